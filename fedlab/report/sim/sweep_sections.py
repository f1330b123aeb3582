"""What a sweep's report says: header facts, reproduce command, sections.

Sections: strategy comparison, training curves, all runs and the DP budget (when recorded).
The paired comparison with FedAvg is `fedlab.report.sim.paired`'s; `fedlab.report.build` puts it
after the strategy comparison.
"""

from __future__ import annotations

import shlex
from typing import Any

import numpy as np

from fedlab.report.content import Column, Panel, PlotSpec, Section, Series, Table
from fedlab.report.fmt import number
from fedlab.report.sim import findings as fnd
from fedlab.report.sim.fairness import sweep_fairness_section
from fedlab.report.sim.paired import ge_negative
from fedlab.report.sim.read import SWEEP_METRICS, SimRun, Sweep


def sweep_header(sw: Sweep) -> list[tuple[str, str]]:
    first = sw.sub[0] if sw.sub else None
    targets = sw.summary.get("targets") or sorted(sw.runs["target"].dropna().unique().tolist())
    strategies = sw.summary.get("strategies") or sorted(sw.runs["strategy"].dropna().unique().tolist())
    seeds = sw.summary.get("seeds") or sorted(sw.runs["seed"].dropna().unique().tolist())
    rows = [
        ("Federation", str(first.get("federation") if first else "?")),
        ("Strategies", ", ".join(map(str, strategies))),
        ("Targets", ", ".join(map(str, targets))),
        ("Seeds", ", ".join(str(int(s)) for s in seeds)),
        ("Runs", f"{len(sw.runs)} in runs.csv, {len(sw.sub)} run folders"),
    ]
    if first and first.config:
        t = first.config.get("training", {})
        rows.append(("Training", f"{t.get('rounds')} rounds, local steps {t.get('local_steps')}"))
    return rows


def sweep_reproduce(sw: Sweep) -> str:
    if not sw.sub or sw.sub[0].config is None:
        return "unknown: no run folder with config.toml"
    strategies = sw.summary.get("strategies") or sorted(sw.runs["strategy"].dropna().unique())
    targets = sw.summary.get("targets") or sorted(sw.runs["target"].dropna().unique())
    seeds = sw.summary.get("seeds") or sorted(sw.runs["seed"].dropna().unique())
    cmd = ["fedlab", "simulate", "--config", str(sw.sub[0].path / "config.toml")]
    cmd += ["--strategy", ",".join(map(str, strategies)), "--target", ",".join(map(str, targets))]
    if len(targets) > 1:
        cmd[-1] = "all"
    cmd += ["--seeds", ",".join(str(int(s)) for s in seeds), "--out", str(sw.path) + "-rerun"]
    return shlex.join(cmd)


def sweep_sections(sw: Sweep) -> list[Section]:
    fairness = sweep_fairness_section(sw)
    return [
        _comparison_section(sw),
        _curves_section(sw),
        *([fairness] if fairness is not None else []),
        _runs_section(sw),
        *_sweep_privacy(sw),
    ]


def _cell(row: Any, metric: str) -> dict[str, Any]:
    """Mean ± std; fedlab.runs.sweep writes std 0 for one seed, which is "unknown", not "no spread"."""
    std = None if (number(row.get("seeds")) or 1) <= 1 else number(row.get(f"{metric}_std"))
    return {"mean": number(row.get(f"{metric}_mean")), "std": std}


def majority_by_target(sub: list[SimRun]) -> dict[Any, tuple[float, float]]:
    """Per target: the majority-class rate of its test split and that rate's noise (2 binomial SE),
    from the run folders' summaries (the mean over runs where a seed's split differs)."""
    rates: dict[Any, list[tuple[float, float]]] = {}
    for run in sub:
        rate, n = number(run.summary.get("target_majority_rate")), number(run.summary.get("target_test"))
        if rate is not None and n:
            rates.setdefault(run.summary.get("target"), []).append((rate, 2 * (rate * (1 - rate) / n) ** 0.5))
    return {
        t: (float(np.mean([r for r, _ in v])), float(np.mean([e for _, e in v]))) for t, v in rates.items()
    }


def _comparison_section(sw: Sweep) -> Section:
    majority = majority_by_target(sw.sub)
    columns = [
        Column("target", "Target"),
        Column("strategy", "Strategy"),
        Column("seeds", "Seeds", "int"),
        Column("final_target_acc", "Final target acc", "mean_std_pct1"),
        Column("best_target_acc", "Best-round acc", "mean_std_pct1", "optimistic: best round chosen on test"),
        Column("final_group_effect", "Final Group Effect", "mean_std_pp1"),
        Column("mean_group_effect", "Mean Group Effect", "mean_std_pp1"),
    ]
    if majority:
        columns.insert(
            3,
            Column(
                "majority",
                "Majority class",
                "pct1",
                "always predicting the target's most frequent class: the accuracy a constant predictor gets",
            ),
        )
    rows, status = [], []
    for rec in sw.table.to_dict("records"):
        row = {"target": rec.get("target"), "strategy": rec.get("strategy"), "seeds": rec.get("seeds")}
        row.update({m: _cell(rec, m) for m in SWEEP_METRICS})
        if majority:
            row["majority"] = majority.get(rec.get("target"), (None, None))[0]
        rows.append(row)
        status.append("bad" if ge_negative(sw.runs, rec.get("target"), rec.get("strategy")) else "")
    targets = list(dict.fromkeys(r["target"] for r in rows))
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    series = []
    for s in strategies:
        by_t = {r["target"]: r["final_target_acc"] for r in rows if r["strategy"] == s}
        series.append(
            Series(
                s,
                targets,
                [by_t.get(t, {}).get("mean") for t in targets],
                [by_t.get(t, {}).get("std") for t in targets],
                style="bar",
            )
        )
    plot = PlotSpec(
        "sweep-final-acc",
        "Final accuracy on the target, per strategy",
        [Panel("", "target domain", "final target accuracy", series, kind="grouped_bar", y_percent=True)],
        ncols=1,
        caption="Mean over seeds; error bars = sample standard deviation over seeds.",
    )
    table = Table(
        "sweep-table", "Strategy comparison (mean ± std over seeds)", columns, rows, row_status=status
    )
    return Section(
        "comparison",
        "Strategy comparison",
        "Which strategy transfers best to each held-out target domain.",
        fnd.sweep_findings(rows) + fnd.constant_predictor_findings(rows, majority),
        [plot],
        [table],
    )


def _round_band(runs: list[SimRun], key: str) -> tuple[list[int], list[float | None], list[float | None]]:
    by_round: dict[int, list[float]] = {}
    for run in runs:
        for rnd, v in zip(run.round_numbers(), run.series(key), strict=True):
            if v is not None:
                by_round.setdefault(rnd, []).append(v)
    xs = sorted(by_round)
    mean = [float(np.mean(by_round[x])) for x in xs]
    std = [float(np.std(by_round[x], ddof=1)) if len(by_round[x]) > 1 else None for x in xs]
    return xs, mean, std


def _curves_section(sw: Sweep) -> Section:
    # the sweep's own order (summary.json), then anything only the run folders know about
    targets = list(
        dict.fromkeys([*map(str, sw.summary.get("targets") or []), *(str(r.get("target")) for r in sw.sub)])
    )
    strategies = list(
        dict.fromkeys(
            [*map(str, sw.summary.get("strategies") or []), *(str(r.get("strategy")) for r in sw.sub)]
        )
    )
    acc_panels, ge_panels = [], []
    for t in targets:
        acc, ge = [], []
        for s in strategies:
            runs = [r for r in sw.sub if str(r.get("target")) == t and str(r.get("strategy")) == s]
            if not runs:
                continue
            xs, m, sd = _round_band(runs, "target_acc")
            acc.append(Series(s, xs, m, sd))
            xs, m, sd = _round_band(runs, "group_effect")
            ge.append(Series(s, xs, m, sd))
        if not acc:
            continue
        acc_panels.append(Panel(f"target {t}", "round", "global target accuracy", acc, y_percent=True))
        ge_panels.append(
            Panel(
                f"target {t}",
                "round",
                "Group Effect (pp)",
                ge,
                hlines=[{"y": 0.0, "label": ""}],
                negative_highlight=True,
                y_percent=True,
            )
        )
    plots = []
    if acc_panels:
        plots = [
            PlotSpec(
                "sweep-curves",
                "Global accuracy on the target per round",
                acc_panels,
                ncols=min(3, len(acc_panels)),
                caption="Mean over seeds, band = ± 1 std.",
            ),
            PlotSpec(
                "sweep-group-effect",
                "Group Effect per round",
                ge_panels,
                ncols=min(3, len(ge_panels)),
                caption="Shaded region below 0 = negative transfer.",
            ),
        ]
    return Section(
        "curves",
        "Training curves",
        "Per-round behaviour of each strategy (from each run's metrics.jsonl).",
        fnd.sweep_negative_transfer([(r.label, r.rounds) for r in sw.sub]),
        plots,
    )


def _runs_section(sw: Sweep) -> Section:
    columns = [
        Column("target", "Target"),
        Column("strategy", "Strategy"),
        Column("seed", "Seed", "int"),
        Column("final_target_acc", "Final acc", "pct1"),
        Column("best_target_acc", "Best acc", "pct1"),
        Column("best_round", "Best round", "int"),
        Column("final_group_effect", "Final GE", "signed_pct1"),
        Column("mean_group_effect", "Mean GE", "signed_pct1"),
        Column("final_voting_acc", "Voting acc", "pct1"),
        Column("final_voting_constant_acc", "One label", "pct1"),  # the votes' constant-label reference
        Column("final_adoption_rate", "Adoption", "pct1"),
        Column("seconds", "Time", "seconds"),
    ]
    recs = sw.runs.to_dict("records")
    rows = [{c.key: rec.get(c.key) for c in columns} for rec in recs]
    status = ["bad" if fnd.negative(r.get("final_group_effect")) else "" for r in rows]
    return Section(
        "runs",
        "All runs",
        f"One row per run; run `fedlab report {sw.path}/<run>` for a single run's full report. FedKA runs: "
        "Voting acc = share of the adopted pseudo-labels that were right, One label = the share one constant "
        "label (their most frequent true class) would get on the same samples.",
        tables=[Table("sweep-runs", "Runs", columns, rows, row_status=status)],
    )


def _sweep_privacy(sw: Sweep) -> list[Section]:
    dp = [r for r in sw.sub if r.has_epsilon]
    if not dp:
        return []
    columns = [Column("run", "Run"), Column("client", "Client"), Column("epsilon", "Final ε", "num3")]
    rows = [
        {"run": r.path.name, "client": c, "epsilon": (r.rounds[-1].get("epsilon") or {}).get(c)}
        for r in dp
        for c in r.clients
    ]
    return [
        Section(
            "privacy",
            "Differential privacy budget",
            "Final cumulative ε per client and run.",
            tables=[Table("sweep-epsilon", "Privacy budget per client", columns, rows)],
        )
    ]
