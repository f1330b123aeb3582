"""Group fairness in a tabular federation's report: per round, per client, per protected attribute.

Every tabular run records, each evaluated round, the global model's group fairness pooled over
the clients' evaluation splits (`pooled_fairness`, from the clients' count tables), on the
target's test split (`target_fairness`) and on each client's own split (`client_fairness`),
with the group sizes (``n_priv`` / ``n_unpriv``). These sections show them; the outcome they are
about is said next to every number: SPD = P(ŷ = positive label | privileged) − P(ŷ = positive
label | unprivileged), EOD the same for true-positive rates.
"""

from __future__ import annotations

from typing import Any

from fedlab.report.content import Column, Finding, Panel, PlotSpec, Section, Series, Table
from fedlab.report.fmt import number
from fedlab.report.sim.read import SimRun, Sweep


def outcome(run: SimRun) -> tuple[str, dict[str, str]]:
    """(positive label, privileged value per attribute) of a run, from its summary or config."""
    names = run.summary.get("class_names") or []
    fed = (run.config or {}).get("federation", {})
    positive = str(names[-1]) if names else str(fed.get("positive_label") or "1")
    privileged = {str(k): str(v) for k, v in (run.summary.get("protected") or {}).items()}
    if not privileged:
        for spec in fed.get("protected") or []:
            attr, _, value = str(spec).partition(":")
            privileged[attr] = value or "(most frequent value)"
    return positive, privileged


def attributes(run: SimRun) -> list[str]:
    """Protected attributes with fairness numbers in any round."""
    seen: dict[str, None] = {}
    for r in run.rounds:
        for key in ("pooled_fairness", "target_fairness"):
            for attr in r.get(key) or {}:
                seen.setdefault(str(attr), None)
    return list(seen)


def _sizes(values: dict[str, Any] | None) -> str:
    values = values or {}
    p, u = number(values.get("n_priv")), number(values.get("n_unpriv"))
    return "–" if p is None or u is None else f"{int(p)} / {int(u)}"


def run_fairness_section(run: SimRun) -> Section | None:
    """Per round (pooled and target), per client (last round), per attribute; None without fairness."""
    attrs = attributes(run)
    if not attrs:
        return None
    positive, privileged = outcome(run)
    rounds = [r for r in run.rounds if r.get("pooled_fairness") or r.get("target_fairness")]
    xs = [int(r.get("round", 0)) for r in rounds]
    panels, tables = [], []
    for attr in attrs:
        series = []
        for scope, style in (("pooled", "main"), ("target", "dashed")):
            for metric, name in (("spd", "SPD"), ("eq_opp_diff", "EOD")):
                ys = [
                    number(((r.get(f"{scope}_fairness") or {}).get(attr) or {}).get(metric)) for r in rounds
                ]
                if any(y is not None for y in ys):
                    series.append(
                        Series(f"{name} {scope}", xs, ys, style=style if metric == "spd" else "thin")
                    )
        panels.append(
            Panel(
                f"{attr} (privileged {privileged.get(attr, '?')})",
                "round",
                f"gap in P(ŷ = {positive!r})",
                series,
                y_percent=True,
                hlines=[{"y": 0.0, "label": "parity"}],
            )
        )
        columns = [Column("round", "Round", "int")]
        for scope in ("pooled", "target"):
            columns += [
                Column(f"{scope}_spd", f"SPD {scope}", "signed_pct1"),
                Column(f"{scope}_eod", f"EOD {scope}", "signed_pct1"),
                Column(f"{scope}_n", f"{scope} n (priv / unpriv)"),
            ]
        rows = []
        for r in rounds:
            row: dict[str, Any] = {"round": r.get("round")}
            for scope in ("pooled", "target"):
                values = (r.get(f"{scope}_fairness") or {}).get(attr)
                row[f"{scope}_spd"] = (values or {}).get("spd")
                row[f"{scope}_eod"] = (values or {}).get("eq_opp_diff")
                row[f"{scope}_n"] = _sizes(values)
            rows.append(row)
        tables.append(
            Table(
                f"sim-fairness-{attr}",
                f"{attr}: SPD of P(ŷ = {positive!r}) per round, "
                f"privileged {attr} = {privileged.get(attr, '?')}",
                columns,
                rows,
                note="Pooled = the global model on all clients' evaluation splits; target = on the held-out "
                "target's test split. SPD / EOD = privileged − unprivileged (rates of ŷ = "
                f"{positive!r} / true-positive rates), in pp; 0 = parity.",
            )
        )
    tables.append(_client_table(run, attrs, positive))
    plot = PlotSpec(
        "sim-fairness",
        "Group fairness of the global model per round",
        panels,
        ncols=min(2, len(panels)),
        caption="Solid = pooled over the clients' splits, dashed = on the target; "
        f"SPD of P(ŷ = {positive!r}), privileged − unprivileged.",
    )
    last = rounds[-1] if rounds else {}
    findings = [
        Finding(
            f"Final pooled SPD of P(ŷ = {positive!r}) for {attr} (privileged {privileged.get(attr, '?')}): "
            f"{100 * v:+.1f} pp over {_sizes((last.get('pooled_fairness') or {}).get(attr))} rows.",
            "warn" if abs(v) >= 0.1 else "info",
            "fairness",
        )
        for attr in attrs
        if (v := number(((last.get("pooled_fairness") or {}).get(attr) or {}).get("spd"))) is not None
    ]
    return Section(
        "fairness",
        "Group fairness",
        f"Favourable outcome ŷ = {positive!r}; privileged groups: "
        + ", ".join(f"{a} = {v}" for a, v in privileged.items())
        + ".",
        findings,
        [plot],
        tables,
    )


def _client_table(run: SimRun, attrs: list[str], positive: str) -> Table:
    last = next((r for r in reversed(run.rounds) if r.get("client_fairness")), {})
    per_client = last.get("client_fairness") or {}
    columns = [Column("client", "Client")]
    for attr in attrs:
        columns += [
            Column(f"spd__{attr}", f"SPD {attr}", "signed_pct1"),
            Column(f"eod__{attr}", f"EOD {attr}", "signed_pct1"),
            Column(f"n__{attr}", f"n {attr} (priv / unpriv)"),
        ]
    rows = []
    for client in run.clients:
        values = per_client.get(client) or {}
        row: dict[str, Any] = {"client": client}
        for attr in attrs:
            row[f"spd__{attr}"] = (values.get(attr) or {}).get("spd")
            row[f"eod__{attr}"] = (values.get(attr) or {}).get("eq_opp_diff")
            row[f"n__{attr}"] = _sizes(values.get(attr))
        rows.append(row)
    return Table(
        "sim-client-fairness",
        f"Per client: the global model's SPD of P(ŷ = {positive!r}) on the client's own split (last round)",
        columns,
        rows,
    )


def sweep_fairness_section(sw: Sweep) -> Section | None:
    """Final pooled and target SPD per target × strategy (mean ± std over seeds)."""
    runs = [r for r in sw.sub if attributes(r)]
    if not runs:
        return None
    positive, privileged = outcome(runs[0])
    attrs = list(dict.fromkeys(a for r in runs for a in attributes(r)))
    columns = [Column("target", "Target"), Column("strategy", "Strategy"), Column("seeds", "Seeds", "int")]
    for attr in attrs:
        columns += [
            Column(f"pooled__{attr}", f"SPD pooled {attr}", "mean_std_pp1"),
            Column(f"target__{attr}", f"SPD target {attr}", "mean_std_pp1"),
        ]
    groups: dict[tuple[str, str], list[SimRun]] = {}
    for r in runs:
        groups.setdefault((str(r.get("target")), str(r.get("strategy"))), []).append(r)
    rows = []
    for (target, strategy), members in groups.items():
        row: dict[str, Any] = {"target": target, "strategy": strategy, "seeds": len(members)}
        for attr in attrs:
            for scope in ("pooled", "target"):
                vals = [
                    v
                    for m in members
                    if (v := number(((m.get(f"final_{scope}_fairness") or {}).get(attr) or {}).get("spd")))
                    is not None
                ]
                mean = sum(vals) / len(vals) if vals else None
                std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else None
                row[f"{scope}__{attr}"] = {"mean": mean, "std": std}
        rows.append(row)
    return Section(
        "fairness",
        "Group fairness",
        f"Final global model; SPD of P(ŷ = {positive!r}), privileged − unprivileged ("
        + ", ".join(f"{a} = {v}" for a, v in privileged.items())
        + "), pooled over the clients' evaluation splits and on the target.",
        tables=[Table("sweep-fairness", "Final group fairness (mean ± std over seeds)", columns, rows)],
    )
