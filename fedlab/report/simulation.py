"""Federation reports: one simulation run, or a sweep of strategies × targets × seeds.

Reads what `fedlab simulate` writes (config.toml, metrics.jsonl, summary.json; a sweep adds
runs.csv, table.csv and one run directory per cell) and turns it into report content. A
missing or truncated file costs the sections that need it, never the whole report.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedlab.report import findings as fnd
from fedlab.report.content import Column, Panel, PlotSpec, Section, Series, Table
from fedlab.report.fmt import number
from fedlab.report.load import Notes, read_csv, read_json, read_jsonl, read_toml


@dataclass
class SimRun:
    """One simulation run, reconciled from whatever files survived."""

    path: Path
    summary: dict[str, Any]
    rounds: list[dict[str, Any]]
    config: dict[str, Any] | None
    clients: list[str] = field(default_factory=list)  # metrics keys, e.g. "0:original"
    client_domain: dict[str, str] = field(default_factory=dict)
    client_sizes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        return self.summary.get(key)

    def series(self, key: str) -> list[float | None]:
        return [number(r.get(key)) for r in self.rounds]

    def round_numbers(self) -> list[int]:
        return [int(r.get("round", i + 1)) for i, r in enumerate(self.rounds)]

    def client_series(self, key: str, client: str) -> list[float | None]:
        return [number((r.get(key) or {}).get(client)) for r in self.rounds]

    @property
    def has_voting(self) -> bool:
        return any(r.get("voting_acc") is not None for r in self.rounds)

    @property
    def has_epsilon(self) -> bool:
        return any(isinstance(r.get("epsilon"), dict) and r["epsilon"] for r in self.rounds)

    @property
    def label(self) -> str:
        return f"{self.get('strategy') or '?'} → {self.get('target') or '?'} (seed {self.get('seed')})"


def load_run(path: Path, notes: Notes, prefix: str = "") -> SimRun:
    """Read one run directory; recompute the summary from the rounds when summary.json is gone."""
    sub = Notes()
    rounds = read_jsonl(path / "metrics.jsonl", sub, "per-round curves cannot be drawn")
    summary = read_json(path / "summary.json", sub, "final numbers are recomputed from metrics.jsonl")
    config = read_toml(path / "config.toml", sub, "the run's settings and reproduce command are unknown")
    for text in sub.items:
        notes.add(prefix + text)
    rounds = sorted(rounds, key=lambda r: number(r.get("round")) or 0)
    summary = dict(summary or {})
    _fill_summary(summary, rounds, config)
    if summary.get("rounds") and len(rounds) < int(summary["rounds"]):
        notes.add(
            f"{prefix}metrics.jsonl has {len(rounds)} of {summary['rounds']} rounds: "
            "the run was interrupted or the file was truncated"
        )
    run = SimRun(path=path, summary=summary, rounds=rounds, config=config)
    _clients(run)
    for key, what in (
        ("client_own_acc", "clients' accuracy on their own test data"),
        ("client_target_acc", "clients' accuracy on the target"),
        ("group_effect", "Group Effect"),
    ):
        if rounds and not any(key in r for r in rounds):
            notes.add(f"{prefix}metrics.jsonl has no {key} (older fedlab?): {what} not shown")
    return run


def _fill_summary(summary: dict[str, Any], rounds: list[dict[str, Any]], config: dict | None) -> None:
    """Take what summary.json lacks from the last round / config (same rules as server.app.summarize)."""
    last = rounds[-1] if rounds else {}
    training = (config or {}).get("training", {})
    defaults = {
        "strategy": last.get("strategy", training.get("strategy")),
        "target": last.get("target", training.get("target")),
        "seed": last.get("seed", (config or {}).get("seed")),
        "rounds": training.get("rounds"),
        "federation": (config or {}).get("federation", {}).get("name"),
        "final_target_acc": last.get("target_acc"),
        "final_group_effect": last.get("group_effect"),
        "final_mean_client_target_acc": last.get("mean_client_target_acc"),
        "final_voting_acc": last.get("voting_acc"),
        "final_adoption_rate": last.get("adoption_rate"),
        "final_client_target_acc": last.get("client_target_acc", {}),
        "final_client_own_acc": last.get("client_own_acc", {}),
    }
    accs = [number(r.get("target_acc")) for r in rounds]
    if any(a is not None for a in accs):
        best = int(np.nanargmax([a if a is not None else np.nan for a in accs]))
        defaults["best_round"] = rounds[best].get("round")
        defaults["best_target_acc"] = accs[best]
    ges = [number(r.get("group_effect")) for r in rounds]
    ges = [g for g in ges if g is not None]
    if ges:
        defaults["mean_group_effect"] = float(np.mean(ges))
    for key, value in defaults.items():
        if summary.get(key) is None and value is not None:
            summary[key] = value


def _clients(run: SimRun) -> None:
    seen: dict[str, None] = {}
    for r in run.rounds:
        for key in ("client_target_acc", "client_own_acc", "client_train"):
            for c in r.get(key) or {}:
                seen.setdefault(str(c), None)
    for info in run.summary.get("clients") or []:
        name = f"{info.get('id')}:{info.get('domain')}"
        seen.setdefault(name, None)
        run.client_domain[name] = str(info.get("domain"))
        run.client_sizes[name] = (info.get("train"), info.get("test"))
    run.clients = sorted(seen, key=lambda c: (int(c.split(":")[0]) if c.split(":")[0].isdigit() else 1e9, c))
    for c in run.clients:
        run.client_domain.setdefault(c, c.split(":", 1)[1] if ":" in c else "")


def reproduce_command(run_dir: Path, config: dict[str, Any] | None) -> str:
    if config is None:
        return "unknown: config.toml is missing"
    new = run_dir.with_name(run_dir.name + "-rerun")
    return shlex.join(["fedlab", "simulate", "--config", str(run_dir / "config.toml"), "--out", str(new)])


# ----------------------------------------------------------------------------- single run
def header(run: SimRun) -> list[tuple[str, str]]:
    s, cfg = run.summary, run.config or {}
    training = cfg.get("training", {})
    fed = cfg.get("federation", {})
    rows = [
        ("Federation", str(s.get("federation") or fed.get("name") or "?")),
        ("Strategy", str(s.get("strategy") or "?")),
        ("Target domain (held out)", str(s.get("target") or "?")),
        ("Client domains", ", ".join(run.client_domain[c] for c in run.clients) or "?"),
        ("Seed", str(s.get("seed"))),
        ("Rounds", f"{len(run.rounds)} recorded of {s.get('rounds', '?')}"),
    ]
    if training:
        rows.append(
            (
                "Training",
                f"local steps {training.get('local_steps')}, batch {training.get('batch_size')}, "
                f"lr {training.get('lr')}, max per domain {fed.get('max_per_domain') or 'all'}",
            )
        )
    if s.get("target_test") is not None:
        rows.append(("Target data", f"{s.get('target_pool')} unlabeled pool, {s.get('target_test')} test"))
    if s.get("seconds") is not None:
        rows.append(("Run time", f"{float(s['seconds']):.1f} s"))
    return rows


def single_sections(run: SimRun) -> list[Section]:
    sections = [_accuracy_section(run), _group_effect_section(run)]
    if run.has_voting:
        sections.append(_voting_section(run))
    sections.append(_clients_section(run))
    if run.has_epsilon:
        sections.append(_privacy_section(run))
    failures = [r for r in run.rounds if r.get("clients_failed")]
    if failures:
        sections.append(_failures_section(failures))
    return sections


def _accuracy_section(run: SimRun) -> Section:
    rounds = run.round_numbers()
    init = number(run.get("initial_target_acc"))
    xs = ([0] if init is not None else []) + rounds
    glob = ([init] if init is not None else []) + run.series("target_acc")
    series = [Series("global model", xs, glob, style="main")]
    for c in run.clients:
        series.append(Series(f"client {c}", rounds, run.client_series("client_target_acc", c), style="thin"))
    plot = PlotSpec(
        "sim-target-acc",
        "Accuracy on the target domain per round",
        [Panel("", "round", "target test accuracy", series, y_percent=True)],
        ncols=1,
        caption="Global = aggregated model after each round (round 0: the initial model). "
        "Clients = each client's locally trained model of that round, scored on the same target test set.",
    )
    columns = [
        Column("round", "Round", "int"),
        Column("target_acc", "Global target acc", "pct1"),
        Column("mean_client_target_acc", "Mean client target acc", "pct1"),
        Column("group_effect", "Group Effect", "signed_pct1", "global − mean client accuracy"),
        Column("clients_ok", "Clients ok", "int"),
        Column("clients_failed", "Clients failed", "int"),
        Column("seconds", "Time", "seconds"),
    ]
    if run.has_voting:
        columns[4:4] = [
            Column("voting_acc", "Voting acc (adopted)", "pct1"),
            Column("adoption_rate", "Adoption rate", "pct1"),
        ]
    rows = [{c.key: r.get(c.key) for c in columns} for r in run.rounds]
    status = ["bad" if fnd.negative(r.get("group_effect")) else "" for r in run.rounds]
    table = Table("sim-rounds", "Per-round results", columns, rows, row_status=status)
    return Section(
        "accuracy",
        "Accuracy on the target",
        "How well the global model and each client's model classify the held-out target domain.",
        fnd.accuracy_findings(run),
        [plot],
        [table],
    )


def _group_effect_section(run: SimRun) -> Section:
    ge = run.series("group_effect")
    plot = PlotSpec(
        "sim-group-effect",
        "Group Effect per round",
        [
            Panel(
                "",
                "round",
                "Group Effect (percentage points)",
                [Series("Group Effect", run.round_numbers(), ge, style="bar")],
                kind="bar",
                hlines=[{"y": 0.0, "label": ""}],
                negative_highlight=True,
                y_percent=True,
            )
        ],
        ncols=1,
        caption="Group Effect = global accuracy on the target − mean of the clients' target accuracies. "
        "Red bars (< 0) mark negative transfer: aggregation did worse than the average client.",
    )
    return Section(
        "group-effect",
        "Group Effect and negative transfer",
        "The gain from aggregating: positive when the federation helps the target domain.",
        fnd.group_effect_findings(run),
        [plot],
    )


def _voting_section(run: SimRun) -> Section:
    rounds = run.round_numbers()
    series = [
        Series("voting accuracy (adopted)", rounds, run.series("voting_acc"), style="main"),
        Series("voting accuracy (all)", rounds, run.series("voting_acc_all"), style="dashed"),
        Series("adoption rate", rounds, run.series("adoption_rate"), style="line"),
    ]
    if any(v is not None for v in run.series("majority_rate")):
        series.append(Series("strict-majority rate", rounds, run.series("majority_rate"), style="dashed"))
    plot = PlotSpec(
        "sim-voting",
        "FedKA federated voting per round",
        [Panel("", "round", "share of the target pool", series, y_percent=True)],
        ncols=1,
        caption="Strict-majority rate = share of unlabeled target samples whose client vote reached the "
        "strict majority; adoption rate = share that became pseudo-labels (the most confident of each "
        "voted class); voting accuracy is scored against the hidden pool labels.",
    )
    return Section(
        "voting",
        "Federated voting (FedKA)",
        "Pseudo-labels for the target domain from the clients' majority vote.",
        fnd.voting_findings(run),
        [plot],
    )


def _clients_section(run: SimRun) -> Section:
    last = run.rounds[-1] if run.rounds else {}
    final_target = run.summary.get("final_client_target_acc") or last.get("client_target_acc") or {}
    final_own = run.summary.get("final_client_own_acc") or last.get("client_own_acc") or {}
    train = last.get("client_train") or {}
    eps = last.get("epsilon") or {}
    columns = [
        Column("client", "Client"),
        Column("domain", "Domain"),
        Column("train", "Train rows", "int"),
        Column("test", "Test rows", "int"),
        Column("target_acc", "Final target acc", "pct1"),
        Column("own_acc", "Final own-test acc", "pct1"),
        Column("train_loss", "Last train loss", "num3"),
    ]
    if eps:
        columns.append(Column("epsilon", "ε (DP budget)", "num3"))
    rows = []
    for c in run.clients:
        size = run.client_sizes.get(c, (None, None))
        rows.append(
            {
                "client": c,
                "domain": run.client_domain.get(c, ""),
                "train": size[0] if size[0] is not None else (train.get(c) or {}).get("num-examples"),
                "test": size[1],
                "target_acc": final_target.get(c),
                "own_acc": final_own.get(c),
                "train_loss": (train.get(c) or {}).get("train-loss"),
                "epsilon": eps.get(c),
            }
        )
    rounds = run.round_numbers()
    own = [Series(f"client {c}", rounds, run.client_series("client_own_acc", c)) for c in run.clients]
    plots = []
    if any(v is not None for s in own for v in s.y):
        plots.append(
            PlotSpec(
                "sim-client-own-acc",
                "Each client's accuracy on its own test data",
                [Panel("", "round", "own-domain test accuracy", own, y_percent=True)],
                ncols=1,
                caption="The global model evaluated by each client on its own held-out split.",
            )
        )
    table = Table("sim-clients", "Per-client results (last round)", columns, rows)
    return Section(
        "clients",
        "Clients",
        "Source domains, their data and how they did.",
        fnd.client_findings(run),
        plots,
        [table],
    )


def _privacy_section(run: SimRun) -> Section:
    rounds = run.round_numbers()
    series = [Series(f"client {c}", rounds, run.client_series("epsilon", c)) for c in run.clients]
    plot = PlotSpec(
        "sim-epsilon",
        "Privacy budget ε spent per client",
        [Panel("", "round", "ε (cumulative)", series)],
        ncols=1,
        caption="Cumulative (ε, δ)-DP budget reported by each client's DP-SGD accountant.",
    )
    return Section(
        "privacy",
        "Differential privacy budget",
        "How much privacy each client has spent; smaller ε is stronger privacy.",
        fnd.epsilon_findings(run),
        [plot],
    )


def _failures_section(rounds: list[dict[str, Any]]) -> Section:
    columns = [Column("round", "Round", "int"), Column("failed", "Failed", "int"), Column("why", "Reason")]
    rows = [
        {
            "round": r.get("round"),
            "failed": r.get("clients_failed"),
            "why": "; ".join(r.get("failures") or []),
        }
        for r in rounds
    ]
    return Section(
        "failures",
        "Client failures",
        "Rounds in which some clients did not return an update (aggregation used the rest).",
        tables=[
            Table("sim-failures", "Failed client updates", columns, rows, row_status=["bad"] * len(rows))
        ],
    )


# ----------------------------------------------------------------------------- sweep
@dataclass
class Sweep:
    path: Path
    summary: dict[str, Any]
    runs: pd.DataFrame
    table: pd.DataFrame
    sub: list[SimRun]


SWEEP_METRICS = ["final_target_acc", "best_target_acc", "final_group_effect", "mean_group_effect"]


def load_sweep(path: Path, notes: Notes) -> Sweep:
    summary = read_json(path / "summary.json", notes, "the sweep's grid is taken from its run folders") or {}
    sub = []
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (child / "metrics.jsonl").is_file() or (child / "summary.json").is_file():
            sub.append(load_run(child, notes, prefix=f"{child.name}/"))
    runs = read_csv(path / "runs.csv", notes, "the run list is rebuilt from the run folders")
    if runs is None or runs.empty:
        from fedlab.sweep import RUN_COLUMNS

        runs = pd.DataFrame([{k: r.summary.get(k) for k in RUN_COLUMNS} for r in sub], columns=RUN_COLUMNS)
    table = read_csv(path / "table.csv", notes, "the strategy table is recomputed from the runs")
    if table is None or table.empty:
        table = _aggregate(runs)
    return Sweep(path, summary, runs, table, sub)


def _aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return pd.DataFrame()
    from fedlab.sweep import aggregate_table

    runs = runs.copy()
    for m in SWEEP_METRICS:
        runs[m] = pd.to_numeric(runs[m], errors="coerce")
    return aggregate_table(runs)


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
    return [_comparison_section(sw), _curves_section(sw), _runs_section(sw), *_sweep_privacy(sw)]


def _cell(row: Any, metric: str) -> dict[str, Any]:
    """Mean ± std; fedlab.sweep writes std 0 for one seed, which is "unknown", not "no spread"."""
    std = None if (number(row.get("seeds")) or 1) <= 1 else number(row.get(f"{metric}_std"))
    return {"mean": number(row.get(f"{metric}_mean")), "std": std}


def _comparison_section(sw: Sweep) -> Section:
    columns = [
        Column("target", "Target"),
        Column("strategy", "Strategy"),
        Column("seeds", "Seeds", "int"),
        Column("final_target_acc", "Final target acc", "mean_std_pct1"),
        Column("best_target_acc", "Best-round acc", "mean_std_pct1", "optimistic: best round chosen on test"),
        Column("final_group_effect", "Final Group Effect", "mean_std_pp1"),
        Column("mean_group_effect", "Mean Group Effect", "mean_std_pp1"),
    ]
    rows, status = [], []
    for rec in sw.table.to_dict("records"):
        row = {"target": rec.get("target"), "strategy": rec.get("strategy"), "seeds": rec.get("seeds")}
        row.update({m: _cell(rec, m) for m in SWEEP_METRICS})
        rows.append(row)
        status.append("bad" if fnd.ge_negative(sw.runs, rec.get("target"), rec.get("strategy")) else "")
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
        fnd.sweep_findings(rows),
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
        fnd.sweep_negative_transfer(sw.sub),
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
        Column("final_adoption_rate", "Adoption", "pct1"),
        Column("seconds", "Time", "seconds"),
    ]
    recs = sw.runs.to_dict("records")
    rows = [{c.key: rec.get(c.key) for c in columns} for rec in recs]
    status = ["bad" if fnd.negative(r.get("final_group_effect")) else "" for r in rows]
    return Section(
        "runs",
        "All runs",
        f"One row per run; run `fedlab report {sw.path}/<run>` for a single run's full report.",
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
