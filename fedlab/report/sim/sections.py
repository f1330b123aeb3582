"""What a single simulation run's report says: header facts, reproduce command, sections.

Sections: accuracy on the target, Group Effect, FedKA voting (when recorded), clients, the DP
budget (when recorded) and client failures (when any).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from fedlab.report.content import Column, Panel, PlotSpec, Section, Series, Table
from fedlab.report.fmt import number
from fedlab.report.sim import findings as fnd
from fedlab.report.sim.fairness import run_fairness_section
from fedlab.report.sim.read import SimRun
from fedlab.report.sim.voting import vote_requirement, voting_findings


def reproduce_command(run_dir: Path, config: dict[str, Any] | None) -> str:
    if config is None:
        return "unknown: config.toml is missing"
    new = run_dir.with_name(run_dir.name + "-rerun")
    return shlex.join(["fedlab", "simulate", "--config", str(run_dir / "config.toml"), "--out", str(new)])


def client_domains(domains: list[str]) -> str:
    """Each source domain once, with its number of clients where it has several ("Female
    (2 clients)", not "Female, Female"), in the order the clients are listed."""
    counts: dict[str, int] = {}
    for d in domains:
        counts[d] = counts.get(d, 0) + 1
    return ", ".join(d if n == 1 else f"{d} ({n} clients)" for d, n in counts.items()) or "?"


def header(run: SimRun) -> list[tuple[str, str]]:
    s, cfg = run.summary, run.config or {}
    training = cfg.get("training", {})
    fed = cfg.get("federation", {})
    rows = [
        ("Federation", str(s.get("federation") or fed.get("name") or "?")),
        ("Strategy", str(s.get("strategy") or "?")),
        ("Target domain (held out)", str(s.get("target") or "?")),
        ("Client domains", client_domains([run.client_domain[c] for c in run.clients])),
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
    if s.get("matching"):
        rows.append(("Feature matching", matching_description(s["matching"])))
    if s.get("selection"):
        rows.append(("FedKA or FedAvg", selection_description(s["selection"])))
    if s.get("voting"):
        rows.append(("FedKA voting", voting_description(s["voting"], str(s.get("strategy") or ""))))
    if s.get("target_test") is not None:
        rows.append(("Target data", f"{s.get('target_pool')} unlabeled pool, {s.get('target_test')} test"))
    if "preprocessing_epsilon" in s:
        eps = s.get("preprocessing_epsilon")
        rows.append(
            (
                "Preprocessing",
                "fitted from per-owner aggregates (no pooled rows), "
                + ("exact" if eps is None else f"Laplace noise, ε = {float(eps):g} per owner"),
            )
        )
    if s.get("seconds") is not None:
        rows.append(("Run time", f"{float(s['seconds']):.1f} s"))
    return rows


def matching_description(m: dict[str, Any]) -> str:
    """One line saying which feature matching ran (f-DAN family): what the clients aligned to."""
    rows, weight = m.get("target_sample"), m.get("mmd_weight")
    line = f"MK-MMD to {rows} target embeddings per round, weight λ = {weight} (ramped)"
    if m.get("mmd_reweight") == "pseudo":
        line += (
            "; class-weighted: each client weights the target rows by its own class mix over their "
            "predicted classes (`training.mmd_reweight`)"
        )
    return line


def selection_description(sel: dict[str, Any]) -> str:
    """Which strategy `fedka-select` ran and why: its mean gain on the sources' pseudo-targets."""
    pseudo = sel.get("pseudo_targets") or {}
    if not pseudo:
        return f"{sel['chosen']}: fewer than two source domains, no pseudo-task to choose on"
    gain = 100 * float(sel["gain"])
    return (
        f"{sel['chosen']}: FedKA − FedAvg {gain:+.1f} pp on average over the {len(pseudo)} source domains "
        f"as pseudo-targets (seed {sel.get('seed')}; FedKA only above 0)"
    )


def voting_description(v: dict[str, Any], strategy: str) -> str:
    """One line saying which FedKA ran: its voting rule and fine-tuning switches as the run's
    summary recorded them (`fedka-ref` overrides the config, so config.toml alone can mislead)."""
    plurality = v["vote_rule"] == "plurality"
    rule = "plurality (every sample)" if plurality else vote_requirement(v.get("vote_agreement"))
    share = float(v["vote_select"])
    scope = "the head only" if v["finetune_scope"] == "head" else "every layer"
    optimizer = "kept for the run" if v["finetune_optimizer_state"] == "run" else "fresh each round"
    start = "averaged" if v["vote_clients_start"] == "averaged" else "fine-tuned"
    parts = [
        f"{rule}, {'all' if share >= 1 else f'the most confident {share:.0%} per class'} adopted",
        "voters with target BatchNorm (AdaBN)" if v["vote_target_batchnorm"] else "voters' own BatchNorm",
        f"votes from the round after {float(v['vote_warmup']):.0%} of the rounds",
        f"fine-tuning {scope}, proximal μ = {float(v['finetune_prox']):g}, ≤ {v['finetune_steps']} steps",
        f"optimizer {optimizer}",
        f"clients start from the {start} model",
    ]
    if v.get("finetune_batchnorm") == "keep":
        parts.append("fine-tuning keeps the averaged model's BatchNorm statistics")
    if v["vote_guard"] != "off":
        parts.append(f"guard {v['vote_guard']}")
    if int(v["vote_min_per_class"]):
        parts.append(f"fine-tunes only with ≥ {v['vote_min_per_class']} votes per class")
    if float(v.get("vote_min_consensus") or 0):
        parts.append(
            f"fine-tunes only when ≥ {float(v['vote_min_consensus']):.0%} of the pool reaches the vote"
        )
    ref = " — the reference notebook's rule and server loop" if strategy.endswith("fedka-ref") else ""
    return "; ".join(parts) + ref


def single_sections(run: SimRun) -> list[Section]:
    sections = [_accuracy_section(run), _group_effect_section(run)]
    if run.has_voting:
        sections.append(_voting_section(run))
    sections.append(_clients_section(run))
    fairness = run_fairness_section(run)
    if fairness is not None:
        sections.append(fairness)
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
    intervals = [fnd.ge_interval(r) for r in run.rounds]
    if any(ci is not None for ci in intervals):
        columns.insert(4, Column("group_effect_ci", "GE 95 % interval", "text", "over the target test rows"))
    rows = [{c.key: r.get(c.key) for c in columns} for r in run.rounds]
    for row, ci in zip(rows, intervals, strict=True):
        if "group_effect_ci" in row:
            row["group_effect_ci"] = None if ci is None else f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}] pp"
    tol = fnd.row_tolerance((run.summary or {}).get("target_test"))
    status = ["bad" if fnd.negative_round(r, tol) else "" for r in run.rounds]
    table = Table("sim-rounds", "Per-round results", columns, rows, row_status=status)
    return Section(
        "accuracy",
        "Accuracy on the target",
        "How well the global model and each client's model classify the held-out target domain.",
        fnd.accuracy_findings(run.summary, run.rounds),
        [plot],
        [table],
    )


def _group_effect_section(run: SimRun) -> Section:
    ge = run.series("group_effect")
    half = [None if ci is None else (ci[1] - ci[0]) / 2 for ci in map(fnd.ge_interval, run.rounds)]
    rows = fnd.test_rows((run.summary or {}).get("target_test"))
    whiskers = (
        f" Whiskers: the round's 95 % interval over {rows} (one run); a dip is negative transfer beyond "
        "test-row noise only where its whole whisker lies below 0."
        if any(h is not None for h in half)
        else ""
    )
    plot = PlotSpec(
        "sim-group-effect",
        "Group Effect per round",
        [
            Panel(
                "",
                "round",
                "Group Effect (percentage points)",
                [
                    Series(
                        "Group Effect", run.round_numbers(), ge, std=half if whiskers else None, style="bar"
                    )
                ],
                kind="bar",
                hlines=[{"y": 0.0, "label": ""}],
                negative_highlight=True,
                y_percent=True,
            )
        ],
        ncols=1,
        caption="Group Effect = global accuracy on the target − mean of the clients' target accuracies. "
        "Red bars (< 0): aggregation did worse than the average client on these rows." + whiskers,
    )
    return Section(
        "group-effect",
        "Group Effect and negative transfer",
        "The gain from aggregating: positive when the federation helps the target domain.",
        fnd.group_effect_findings(run.rounds, (run.summary or {}).get("target_test")),
        [plot],
    )


def _voting_section(run: SimRun) -> Section:
    rounds = run.round_numbers()
    series = [
        Series("voting accuracy (adopted)", rounds, run.series("voting_acc"), style="main"),
        Series("voting accuracy (all)", rounds, run.series("voting_acc_all"), style="dashed"),
        Series("adoption rate", rounds, run.series("adoption_rate"), style="line"),
    ]
    if any(v is not None for v in run.series("voting_constant_acc")):
        series.append(
            Series("one constant label (adopted)", rounds, run.series("voting_constant_acc"), style="dashed")
        )
    rule = (run.summary.get("voting") or {}).get("vote_rule")
    agreement = (run.summary.get("voting") or {}).get("vote_agreement")
    required = vote_requirement(agreement)
    if rule != "plurality" and any(v is not None for v in run.series("majority_rate")):
        series.append(Series("strict-majority rate", rounds, run.series("majority_rate"), style="dashed"))
    plot = PlotSpec(
        "sim-voting",
        "FedKA federated voting per round",
        [Panel("", "round", "share of the target pool", series, y_percent=True)],
        ncols=1,
        caption=(
            "Adoption rate = share of unlabeled target samples whose plurality vote became a pseudo-label "
            "(the reference rule: every sample)"
            if rule == "plurality"
            else "Strict-majority rate = share of unlabeled target samples whose client vote reached "
            + ("unanimity" if required == "unanimity" else f"the {required}")
            + "; adoption rate = share that became pseudo-labels (the most confident of each "
            "voted class)"
        )
        + "; voting accuracy is scored against the hidden pool labels, beside the accuracy of labelling "
        "every adopted sample with their most frequent true class.",
    )
    return Section(
        "voting",
        "Federated voting (FedKA)",
        f"Pseudo-labels for the target domain from the clients' {rule or 'majority'} vote.",
        voting_findings(run.rounds, rule, agreement),
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
        fnd.client_findings(run.rounds),
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
        fnd.epsilon_findings(run.rounds),
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
