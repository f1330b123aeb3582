"""What a study's report says, organized by condition (strategy × DP ε × local anonymization).

Sections: the conditions (utility with its context, Group Effect with negative transfer, ε
spent, suppression), fairness per protected attribute (pooled over the clients' evaluation
splits and on the target, with group sizes), the paired effect of each privacy treatment (vs the
same strategy without privacy, seed by seed), the strategies within each condition (vs FedAvg),
plots against the privacy level, the clients (utility, fairness, achieved anonymity) and the
skipped combinations. Effects are in percentage points with paired t 95% intervals and wins.
"""

from __future__ import annotations

import math
import shlex
from typing import Any

import pandas as pd

from fedlab.metrics.stats import Interval, t_interval
from fedlab.metrics.study_effects import BASELINE, privacy_effects, strategy_effects
from fedlab.report.content import Column, Section, Table
from fedlab.report.fmt import number
from fedlab.report.study import findings as fnd
from fedlab.report.study.read import Study, conditions, mean_std, select_condition
from fedlab.runs.study_rows import condition_label, privacy_label


def header(st: Study) -> list[tuple[str, str]]:
    s, cfg = st.summary, st.config or {}
    fed, training = cfg.get("federation", {}), cfg.get("training", {})
    where = fed.get("csv") or "?"
    rows = [
        (
            "Federation",
            f"tabular: {where}, clients by {fed.get('domain_column') or 'the Adult default (race)'}",
        ),
        ("Strategies", ", ".join(map(str, s.get("strategies") or sorted(st.runs["strategy"].unique())))),
        (
            "DP (client DP-SGD target ε)",
            ", ".join("none" if e is None else f"{e:g}" for e in s.get("epsilons", [])),
        ),
        ("Local anonymization", ", ".join(map(str, s.get("anonymizations") or []))),
        ("Seeds", ", ".join(str(int(x)) for x in s.get("seeds") or sorted(st.runs["seed"].unique()))),
        ("Runs", f"{len(st.runs)} run(s), {len(st.skipped)} combination(s) skipped"),
        ("Favourable outcome", f"ŷ = {st.positive_label!r} (the federation's positive label)"),
        ("Privileged groups", ", ".join(f"{a} = {v}" for a, v in st.privileged.items()) or "?"),
    ]
    if training:
        rows.append(
            (
                "Training",
                f"{training.get('rounds')} rounds × {training.get('local_steps')} local steps, lr "
                f"{training.get('lr')}, batch {training.get('batch_size')}, "
                f"≤ {fed.get('max_per_domain') or 'all'} rows per domain, "
                f"{fed.get('clients_per_domain', 1)} client(s) per domain",
            )
        )
    return rows


def reproduce(st: Study) -> str:
    s = st.summary
    if not s:
        return "unknown: summary.json is missing"
    cmd = ["fedlab", "study", "--strategies", ",".join(s.get("strategies") or [])]
    cmd += ["--epsilons", ",".join("none" if e is None else f"{e:g}" for e in s.get("epsilons") or [])]
    cmd += ["--anonymize", ",".join(str(a).replace(",", ";") for a in s.get("anonymizations") or [])]
    cmd += ["--seeds", ",".join(str(x) for x in s.get("seeds") or [])]
    if st.config is not None:
        cmd += ["--config", str(st.path / st.runs["run"].iloc[0] / "config.toml")] if len(st.runs) else []
    return shlex.join([*cmd, "--out", f"{st.path}-rerun"])


def _pp(iv: Interval) -> dict[str, Any]:
    def j(x: float) -> float | None:
        return None if not math.isfinite(x) else 100 * x

    return {"mean": j(iv.mean), "ci_low": j(iv.ci_low), "ci_high": j(iv.ci_high), "wins": iv.wins, "n": iv.n}


def conditions_section(st: Study) -> Section:
    columns = [
        Column("condition", "Condition"),
        Column("seeds", "Seeds", "int"),
        Column("target_acc", "Target acc", "mean_std_pct1"),
        Column("target_balanced_acc", "Target bal. acc", "mean_std_pct1", "mean of TPR and TNR"),
        Column(
            "target_majority_rate",
            "Target majority rate",
            "pct1",
            "accuracy of always predicting the majority",
        ),
        Column("client_acc", "Client acc (own split)", "mean_std_pct1"),
        Column("client_balanced_acc", "Client bal. acc", "mean_std_pct1"),
        Column(
            "group_effect",
            "Group Effect [95% CI]",
            "ci_pp1",
            "global − mean client target acc; wins = seeds > 0",
        ),
        Column("epsilon_spent", "ε spent (max client)", "mean_std3"),
        Column("rows_suppressed", "Rows suppressed (mean)", "int"),
    ]
    rows, status = [], []
    for strategy, eps, anon in conditions(st):
        sel = select_condition(st.runs, strategy, eps, anon)
        ge = t_interval([number(v) for v in sel["group_effect"] if number(v) is not None])
        rows.append(
            {
                "condition": condition_label(strategy, eps, anon),
                "seeds": len(sel),
                **{
                    k: mean_std(sel[k])
                    for k in ("target_acc", "target_balanced_acc", "client_acc", "client_balanced_acc")
                },
                "target_majority_rate": mean_std(sel["target_majority_rate"])["mean"],
                "group_effect": _pp(ge),
                "epsilon_spent": mean_std(sel["epsilon_spent"])
                if sel["epsilon_spent"].notna().any()
                else {"mean": None},
                "rows_suppressed": mean_std(sel["rows_suppressed"])["mean"],
            }
        )
        status.append("bad" if ge.direction() < 0 else "")
    table = Table(
        "study-conditions",
        "Per condition: utility, Group Effect and privacy spent (mean ± std over seeds)",
        columns,
        rows,
        note="Accuracy and balanced accuracy of the final global model on the target's test split and on "
        "each client's own split (clients' mean). Group Effect: paired t 95% CI over seeds, in pp; a row is "
        "flagged when the interval lies below 0 (negative transfer).",
        row_status=status,
    )
    return Section(
        "conditions",
        "Conditions: utility, Group Effect, privacy spent",
        "One row per strategy × DP ε × local anonymization. A model whose balanced accuracy is near 0.5 "
        "is close to a constant predictor: its fairness gaps say little.",
        fnd.condition_findings(st),
        tables=[table],
    )


def fairness_section(st: Study) -> Section:
    tables = []
    for attr in st.attrs:
        priv = st.privileged.get(attr, "?")
        columns = [
            Column("condition", "Condition"),
            Column("pooled_spd", "SPD pooled", "mean_std_pp1"),
            Column("pooled_eod", "EOD pooled", "mean_std_pp1"),
            Column("target_spd", "SPD target", "mean_std_pp1"),
            Column("target_eod", "EOD target", "mean_std_pp1"),
            Column("pooled_n", "Pooled n (priv / unpriv)"),
            Column("target_n", "Target n (priv / unpriv)"),
        ]
        rows = []
        for strategy, eps, anon in conditions(st):
            sel = select_condition(st.runs, strategy, eps, anon)
            row = {"condition": condition_label(strategy, eps, anon)}
            for scope in ("pooled", "target"):
                for m in ("spd", "eod"):
                    col = f"{scope}_{m}__{attr}"
                    row[f"{scope}_{m}"] = mean_std(sel[col]) if col in sel else {"mean": None}
                row[f"{scope}_n"] = _sizes(sel, scope, attr)
            rows.append(row)
        tables.append(
            Table(
                f"study-fairness-{attr}",
                f"{attr}: privileged {attr} = {priv}; SPD of P(ŷ = {st.positive_label!r}), privileged − "
                "unprivileged (mean ± std over seeds, pp)",
                columns,
                rows,
                note=f"SPD = P(ŷ = {st.positive_label!r} | {attr} = {priv}) − P(ŷ = {st.positive_label!r} | "
                f"{attr} ≠ {priv}); EOD = the same difference of true-positive rates. Pooled = the global "
                "model on all clients' evaluation splits (from the clients' count tables); target = on the "
                "held-out target domain. 0 = parity; > 0 favours the privileged group.",
            )
        )
    return Section(
        "fairness",
        "Group fairness per condition",
        f"The final global model's group fairness for each protected attribute. Outcome: ŷ = "
        f"{st.positive_label!r}.",
        fnd.fairness_findings(st),
        tables=tables,
    )


def _sizes(sel: pd.DataFrame, scope: str, attr: str) -> str:
    p, u = f"{scope}_n_priv__{attr}", f"{scope}_n_unpriv__{attr}"
    if p not in sel or sel[p].isna().all():
        return "–"
    return f"{int(sel[p].dropna().iloc[0])} / {int(sel[u].dropna().iloc[0])}"


def effect_metrics(st: Study) -> list[tuple[str, str]]:
    """(column, label) of the metrics whose paired effects the report shows."""
    out = [
        ("target_acc", "Δ target acc"),
        ("target_balanced_acc", "Δ target bal. acc"),
        ("group_effect", "Δ Group Effect"),
    ]
    for attr in st.attrs:
        out += [
            (f"pooled_spd__{attr}", f"Δ SPD pooled ({attr})"),
            (f"target_spd__{attr}", f"Δ SPD target ({attr})"),
        ]
    return out


def _effect_table(
    entries: list[dict[str, Any]],
    metrics: list[tuple[str, str]],
    first: Column,
    tid: str,
    title: str,
    note: str,
) -> tuple[Table, list[dict[str, Any]]]:
    grouped: dict[tuple, dict[str, Any]] = {}
    for e in entries:
        key = (e["strategy"], e["epsilon_target"], e["anonymize"])
        row = grouped.setdefault(
            key,
            {
                "strategy": e["strategy"],
                "privacy": privacy_label(e["epsilon_target"], e["anonymize"]),
                "condition": condition_label(e["strategy"], e["epsilon_target"], e["anonymize"]),
            },
        )
        row[e["metric"]] = _pp(e["effect"])
        row["pairs"] = max(row.get("pairs", 0), e["effect"].n)
    columns = [first, Column("privacy", "Privacy condition"), Column("pairs", "Pairs", "int")]
    columns += [Column(m, label, "ci_pp1", "mean [95% CI] wins/pairs, pp") for m, label in metrics]
    rows = list(grouped.values())
    return Table(tid, title, columns, rows, note=note), rows


def privacy_effects_section(st: Study) -> Section:
    metrics = effect_metrics(st)
    entries = privacy_effects(st.runs, [m for m, _ in metrics])
    table, _ = _effect_table(
        entries,
        metrics,
        Column("strategy", "Strategy"),
        "study-privacy-effects",
        "Effect of each privacy treatment vs the same strategy without privacy (paired by seed, pp)",
        "Condition − (same strategy, no DP, raw rows), seed by seed; paired t 95% CI; wins = seeds where "
        "the difference is > 0. A fairness Δ > 0 means the gap grew in the privileged group's favour.",
    )
    return Section(
        "privacy-effects",
        "Paired effect of each privacy treatment",
        "What local anonymization and client DP change, for each strategy, against its own no-privacy "
        "runs on the same seeds. A difference is called only when its interval excludes 0.",
        fnd.effect_findings(entries, "vs no privacy"),
        tables=[table],
    )


def strategy_effects_section(st: Study) -> Section | None:
    metrics = effect_metrics(st)
    entries = strategy_effects(st.runs, [m for m, _ in metrics])
    if not entries:
        return None
    table, _ = _effect_table(
        entries,
        metrics,
        Column("strategy", "Strategy"),
        "study-strategy-effects",
        f"Strategies vs {BASELINE} within each privacy condition (paired by seed, pp)",
        f"Strategy − {BASELINE} in the same privacy condition, seed by seed; paired t 95% CI; "
        "wins = seeds > 0.",
    )
    return Section(
        "strategy-effects",
        f"Strategies within each condition (vs {BASELINE})",
        "A fairer aggregation (q-FFL) or FedKA against FedAvg under the same privacy treatment.",
        fnd.effect_findings(entries, f"vs {BASELINE}"),
        tables=[table],
    )
