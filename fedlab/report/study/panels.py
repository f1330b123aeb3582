"""A study's plots (fairness and Group Effect against the privacy level), its clients and skips."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fedlab.report.content import Column, Panel, PlotSpec, Section, Series, Table
from fedlab.report.fmt import number
from fedlab.report.study.read import Study, conditions, mean_std, select_condition
from fedlab.runs.study_rows import condition_label


def _levels(st: Study) -> list[tuple[Any, str]]:
    """Privacy levels in order: no DP before DP, then the anonymizations in the study's order."""
    seen: dict[tuple[Any, str], None] = {}
    for _, eps, anon in conditions(st):
        seen.setdefault((eps, anon), None)
    return sorted(
        seen,
        key=lambda k: (
            -1.0 if k[0] is None else float(k[0]),
            list(dict.fromkeys(a for _, a in seen)).index(k[1]),
        ),
    )


def _panel(st: Study, metric: str, title: str, y_label: str, zero: bool = False) -> Panel | None:
    if metric not in st.runs:
        return None
    levels = _levels(st)
    cats = [_short(e, a) for e, a in levels]
    series = []
    for strategy in dict.fromkeys(s for s, _, _ in conditions(st)):
        ys, sds = [], []
        for eps, anon in levels:
            cell = mean_std(select_condition(st.runs, strategy, eps, anon)[metric])
            ys.append(cell.get("mean"))
            sds.append(cell.get("std"))
        series.append(Series(strategy, cats, ys, sds))
    if not any(y is not None for s in series for y in s.y):
        return None  # e.g. race on a target that holds one race only
    groups = []
    for eps in dict.fromkeys(e for e, _ in levels):
        groups.append(
            {
                "label": "no DP" if eps is None else f"client DP ε={float(eps):g}",
                "categories": [_short(e, a) for e, a in levels if e == eps],
            }
        )
    return Panel(
        title,
        "privacy condition",
        y_label,
        series,
        y_percent=True,
        categories=cats,
        groups=groups,
        hlines=[{"y": 0.0, "label": ""}] if zero else [],
        negative_highlight=zero and metric == "group_effect",
    )


def _short(eps: Any, anon: str) -> str:
    """A short, unique x label: the anonymization, with the DP level when there is DP."""
    name = "raw" if anon in ("", "none") else anon
    return name if eps is None else f"{name} · ε{float(eps):g}"


def plots_section(st: Study) -> Section:
    specs = [
        ("group_effect", "Group Effect (final)", "Group Effect (pp)", True),
        ("target_acc", "Accuracy on the target", "target accuracy", False),
        ("target_balanced_acc", "Balanced accuracy on the target", "balanced accuracy", False),
    ]
    for attr in st.attrs:
        specs.append(
            (f"pooled_spd__{attr}", f"SPD pooled, {attr}", f"SPD of P(ŷ = {st.positive_label!r})", True)
        )
        specs.append(
            (
                f"target_spd__{attr}",
                f"SPD on the target, {attr}",
                f"SPD of P(ŷ = {st.positive_label!r})",
                True,
            )
        )
    panels = [p for p in (_panel(st, *s) for s in specs) if p is not None]
    plot = PlotSpec(
        "study-privacy-levels",
        "Group Effect, utility and fairness against the privacy level",
        panels,
        ncols=2,
        caption="Mean over seeds, band / bars = ± 1 std; one line per strategy. SPD = P(ŷ = "
        f"{st.positive_label!r} | privileged) − P(ŷ = {st.positive_label!r} | unprivileged); "
        "privileged: " + ", ".join(f"{a} = {v}" for a, v in st.privileged.items()) + ". Shaded below 0 "
        "in the Group Effect panel = negative transfer. A strategy missing at a level was skipped there.",
    )
    return Section(
        "plots",
        "Against the privacy level",
        "How the Group Effect, utility and group fairness move as clients anonymize or privatize.",
        plots=[plot],
    )


def clients_section(st: Study) -> Section:
    c = st.clients
    columns = [
        Column("condition", "Condition"),
        Column("client", "Client"),
        Column("n", "Eval rows", "int"),
        Column("acc", "Acc (own split)", "mean_std_pct1"),
        Column("balanced_acc", "Bal. acc", "mean_std_pct1"),
        Column("majority_rate", "Majority rate", "pct1"),
    ]
    for attr in st.attrs:
        columns.append(Column(f"spd__{attr}", f"SPD {attr}", "mean_std_pp1"))
        columns.append(Column(f"n__{attr}", f"n {attr} (priv / unpriv)"))
    columns += [
        Column("epsilon", "ε spent", "mean_std3"),
        Column("achieved_k", "k achieved", "int"),
        Column("achieved_l", "ℓ achieved", "int"),
        Column("achieved_t", "t achieved", "num3"),
        Column("suppressed", "Suppressed rows", "mean_std3"),
        Column("info_loss", "Info loss", "mean_std3", "NCP with suppressed rows as full loss"),
    ]
    rows = []
    for strategy, eps, anon in conditions(st):
        sel = select_condition(c, strategy, eps, anon) if not c.empty else c
        for client in dict.fromkeys(sel.get("client", pd.Series(dtype=object))):
            one = sel[sel["client"] == client]
            row: dict[str, Any] = {
                "condition": condition_label(strategy, eps, anon),
                "client": client,
                "n": number(one["n"].dropna().iloc[0]) if one["n"].notna().any() else None,
                "acc": mean_std(one["acc"]),
                "balanced_acc": mean_std(one["balanced_acc"]),
                "majority_rate": mean_std(one["majority_rate"])["mean"],
                "epsilon": mean_std(one["epsilon"]) if one["epsilon"].notna().any() else {"mean": None},
                "achieved_k": _min(one["achieved_k"]),
                "achieved_l": _min(one["achieved_l"]),
                "achieved_t": _max(one["achieved_t"]),
                "suppressed": _optional(one["suppressed"]),
                "info_loss": _optional(one["info_loss"]),
            }
            for attr in st.attrs:
                col = f"client_spd__{attr}"
                row[f"spd__{attr}"] = mean_std(one[col]) if col in one else {"mean": None}
                p, u = f"client_n_priv__{attr}", f"client_n_unpriv__{attr}"
                row[f"n__{attr}"] = (
                    f"{int(one[p].dropna().iloc[0])} / {int(one[u].dropna().iloc[0])}"
                    if p in one and one[p].notna().any()
                    else "–"
                )
            rows.append(row)
    table = Table(
        "study-clients",
        "Per client and condition (mean ± std over seeds)",
        columns,
        rows,
        note="The final global model on each client's own evaluation split; fairness from the client's raw "
        "protected attributes. Achieved k / ℓ / t: the worst over seeds of the client's released training "
        "table (`audits.anonymity.verify`; ℓ distinct, t equal-distance EMD of the sensitive attribute).",
    )
    return Section(
        "clients", "Clients", "Utility, fairness and local anonymization per client.", tables=[table]
    )


def _optional(values: pd.Series) -> dict[str, Any]:
    return mean_std(values) if values.notna().any() else {"mean": None}


def _min(values: pd.Series) -> float | None:
    v = [x for x in (number(y) for y in values) if x is not None]
    return min(v) if v else None


def _max(values: pd.Series) -> float | None:
    v = [x for x in (number(y) for y in values) if x is not None]
    return max(v) if v else None


def skipped_section(st: Study) -> Section | None:
    if not st.skipped:
        return None
    seen: dict[tuple, dict[str, Any]] = {}
    for s in st.skipped:
        key = (s.get("strategy"), s.get("epsilon_target"), s.get("anonymize"))
        row = seen.setdefault(
            key, {"condition": condition_label(*key), "seeds": 0, "reason": s.get("reason")}
        )
        row["seeds"] += 1
    columns = [
        Column("condition", "Condition"),
        Column("seeds", "Seeds", "int"),
        Column("reason", "Why skipped"),
    ]
    return Section(
        "skipped",
        "Combinations not run",
        "Cells of the grid a strategy cannot run with the cell's privacy guarantee; they were skipped, "
        "not failed, and are absent from every table above.",
        tables=[Table("study-skipped", "Skipped combinations", columns, list(seen.values()))],
    )
