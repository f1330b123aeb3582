"""Simulation and sweep findings in words, computed from the numbers the report shows.

They take plain data - a run's summary dict and its per-round metrics.jsonl records - not the
loaded `SimRun`: the section modules import this one, and it imports nothing that reads runs.
Every sentence formats its numbers with `fedlab.report.fmt`, the formatter the tables use.
"""

from __future__ import annotations

from typing import Any

from fedlab.metrics.comparison import REFERENCES
from fedlab.report.content import Finding
from fedlab.report.fmt import cell, number, pct, pp

Rounds = list[dict[str, Any]]  # metrics.jsonl records, oldest round first
NEGATIVE_TOL = 1e-9  # a Group Effect of -1e-17 is float noise from averaging, not negative transfer


def negative(x: Any, tol: float = NEGATIVE_TOL) -> bool:
    v = number(x)
    return v is not None and v < -tol


def row_tolerance(n_test: Any) -> float:
    """A Group Effect dip smaller than two target test rows (2 / n) is not flagged as negative
    transfer: it is the difference a couple of predictions make, not a loss from aggregating."""
    n = number(n_test)
    return max(NEGATIVE_TOL, 2.0 / n) if n else NEGATIVE_TOL


# ----------------------------------------------------------------------------- simulation
def accuracy_findings(summary: dict[str, Any], rounds: Rounds) -> list[Finding]:
    s = summary
    final, init = number(s.get("final_target_acc")), number(s.get("initial_target_acc"))
    best, best_round = number(s.get("best_target_acc")), s.get("best_round")
    out: list[Finding] = []
    if final is None:
        return [Finding("No round finished: there is no final accuracy to report.", "warn", "accuracy")]
    majority, n_test = number(s.get("target_majority_rate")), number(s.get("target_test"))
    text = f"Final accuracy of the global model on target {s.get('target')}: {pct(final)}"
    text += f" after {len(rounds)} round(s)"
    context = [f"initial model: {pct(init)}"] if init is not None else []
    if majority is not None:
        context.append(f"always predicting the majority class: {pct(majority)}")
    text += f" ({'; '.join(context)})." if context else "."
    # a final accuracy is a number, not a verdict: whether 27 % is good depends on references (the
    # majority class here, FedAvg / central / oracle in a sweep's paired comparison), never on
    # having beaten a random initial model; only "no better than a constant predictor" is judged
    severity = "info"
    if majority is not None:
        # beyond the binomial noise of the majority rate on this test split (2 SE)
        noise = 2 * (majority * (1 - majority) / n_test) ** 0.5 if n_test else 0.0
        if final <= majority + noise:
            severity = "warn"
            text += (
                " The model is no better than a constant predictor on this target"
                f" (within 2 SE = {100 * noise:.1f} pp of the majority-class rate)."
            )
    out.append(
        Finding(
            text,
            severity,
            "accuracy",
            values={"final_target_acc": final, "initial_target_acc": init, "majority_rate": majority},
        )
    )
    if best is not None and best_round is not None and best > final:
        out.append(
            Finding(
                f"The best round was round {best_round} with {pct(best)}; it is chosen on the target test "
                "set, so quote the final round as the honest number.",
                "info",
                "accuracy",
                values={"best_target_acc": best, "best_round": best_round},
            )
        )
    last = rounds[-1] if rounds else {}
    clients = {c: number(v) for c, v in (last.get("client_target_acc") or {}).items()}
    clients = {c: v for c, v in clients.items() if v is not None}
    if clients:
        top = max(clients, key=lambda c: clients[c])
        if clients[top] > final:
            out.append(_client_beat_global(top, clients[top], final, last, n_test))
    return out


def _client_beat_global(top: str, client: float, final: float, last: dict[str, Any], n_test: Any) -> Finding:
    """"Client k's own model beat the global model", with the paired interval over the test rows
    where the run recorded it (`client_vs_global_ci`): a lead of a few rows is said to be noise."""
    text = f"In the last round client {top}'s own model ({pct(client)}) beat the global model"
    text += f" ({pct(final)}) on the target"
    values = {"client": top, "client_target_acc": client}
    ci = (last.get("client_vs_global_ci") or {}).get(top)
    lo, hi = (number(ci[0]), number(ci[1])) if isinstance(ci, list | tuple) and len(ci) == 2 else (None, None)
    if lo is None or hi is None:
        return Finding(text + ".", "warn", "accuracy", values=values)
    interval = f"95% CI {100 * lo:+.1f} to {100 * hi:+.1f} pp over {test_rows(n_test)}"
    if lo > 0:
        text += f", beyond the test rows' noise ({interval})."
        return Finding(text, "warn", "accuracy", values=values)
    return Finding(
        f"{text} by {pp(client - final)}, within the test rows' noise ({interval}): not a detectable lead.",
        "info",
        "accuracy",
        values=values,
    )


def ge_interval(record: dict[str, Any]) -> tuple[float, float] | None:
    """A round's Group Effect interval over the target test rows (`group_effect_ci`), or None for
    rounds without one (runs made before it was recorded, rounds without client scores)."""
    ci = record.get("group_effect_ci")
    if not isinstance(ci, list | tuple) or len(ci) != 2:
        return None
    lo, hi = number(ci[0]), number(ci[1])
    return (lo, hi) if lo is not None and hi is not None else None


def negative_round(record: dict[str, Any], tol: float = NEGATIVE_TOL) -> bool:
    """Whether a round shows negative transfer: its Group Effect's interval over the test rows lies
    below 0, or — for rounds recorded without one — the Group Effect is below −`tol`."""
    ci = ge_interval(record)
    return ci[1] < 0 if ci is not None else negative(record.get("group_effect"), tol)


def test_rows(n_test: Any) -> str:
    """ "the 31 target test rows": how findings and captions name what a Group Effect interval is over."""
    return f"the {int(number(n_test))} target test rows" if number(n_test) else "the target test rows"


def _rounds_text(rounds: list[Any], most: int = 12) -> str:
    shown = ", ".join(str(r) for r in rounds[:most])
    return shown + (f", … ({len(rounds) - most} more)" if len(rounds) > most else "")


def group_effect_findings(rounds: Rounds, n_test: Any = None) -> list[Finding]:
    """Negative transfer in one run: a round counts only when its Group Effect's 95 % interval over
    the target test rows lies below 0 (runs recorded without the interval: a dip beyond two rows)."""
    records = [r for r in rounds if number(r.get("group_effect")) is not None]
    if not records:
        return [Finding("No Group Effect was recorded.", "warn", "group_effect")]
    tol = row_tolerance(n_test)
    with_ci = all(ge_interval(r) is not None for r in records)
    rows = test_rows(n_test)
    ge = [(r.get("round"), number(r.get("group_effect")), negative_round(r, tol)) for r in records]
    below = [(rnd, g) for rnd, g, neg in ge if neg]
    dips = [(rnd, g) for rnd, g, neg in ge if g < -NEGATIVE_TOL and not neg]
    out = []
    if below:
        worst = min(below, key=lambda x: x[1])
        margin = f"by more than two test rows ({pp(-tol)})"
        if with_ci:
            margin = f"with the 95 % interval over {rows} below 0"
        out.append(
            Finding(
                f"Negative transfer in {len(below)} of {len(ge)} round(s) (round "
                f"{_rounds_text([r for r, _ in below])}): aggregation did worse on the target than the "
                f"average client, {margin}; worst {pp(worst[1])} in round {worst[0]}."
                + (
                    " One run: whether it recurs across training seeds is the paired comparison's question."
                    if with_ci
                    else ""
                ),
                "flag",
                "group_effect",
                values={"negative_rounds": [r for r, _ in below], "worst": worst[1]},
            )
        )
    if dips:
        worst = min(dips, key=lambda x: x[1])
        noise = (
            f"with a 95 % interval over {rows} that includes 0: not distinguishable from no effect"
            if with_ci
            else f"each smaller than two target test rows ({pp(-tol)})"
        )
        out.append(
            Finding(
                f"{'Also, the' if below else 'No negative transfer beyond test-row noise: the'} Group Effect "
                f"dipped below 0 in {len(dips)} of {len(ge)} round(s) (worst {pp(worst[1])} in round "
                f"{worst[0]}), {noise}.",
                "info",
                "group_effect",
                values={"dip_rounds": [r for r, _ in dips], "worst_dip": worst[1]},
            )
        )
    if not below and not dips:
        out.append(
            Finding(
                f"No negative transfer: the Group Effect was ≥ 0 in all {len(ge)} round(s).",
                "good",
                "group_effect",
            )
        )
    _, final, final_negative = ge[-1]
    mean = pp(sum(g for _, g, _ in ge) / len(ge))
    ci = ge_interval(records[-1])
    interval = f"95 % interval over {rows} {pp(ci[0])} to {pp(ci[1])}; " if ci is not None else ""
    out.append(
        Finding(
            f"Final Group Effect {pp(final)} ({interval}mean over rounds {mean}).",
            "flag" if final_negative else "info",
            "group_effect",
            values={"final_group_effect": final, "final_group_effect_ci": list(ci) if ci else None},
        )
    )
    return out


def client_findings(rounds: Rounds) -> list[Finding]:
    last = rounds[-1] if rounds else {}
    own = {c: number(v) for c, v in (last.get("client_own_acc") or {}).items()}
    own = {c: v for c, v in own.items() if v is not None}
    out = []
    if own:
        lo = min(own, key=lambda c: own[c])
        hi = max(own, key=lambda c: own[c])
        out.append(
            Finding(
                f"On the clients' own test data the global model ranges from {pct(own[lo])} (client {lo}) "
                f"to {pct(own[hi])} (client {hi}).",
                "info",
                "clients",
            )
        )
    failed = sum(int(number(r.get("clients_failed")) or 0) for r in rounds)
    if failed:
        out.append(Finding(f"{failed} client update(s) failed during the run.", "warn", "clients"))
    return out


def epsilon_findings(rounds: Rounds) -> list[Finding]:
    last = next((r for r in reversed(rounds) if r.get("epsilon")), {})
    eps = {c: number(v) for c, v in (last.get("epsilon") or {}).items()}
    eps = {c: v for c, v in eps.items() if v is not None}
    if not eps:
        return []
    worst = max(eps, key=lambda c: eps[c])
    return [
        Finding(
            f"Largest privacy budget after round {last.get('round')}: ε = {cell(eps[worst], 'num3')} "
            f"(client {worst}); smallest ε = {cell(min(eps.values()), 'num3')}.",
            "warn" if eps[worst] > 10 else "info",
            "privacy",
            values={"epsilon": eps},
        )
    ]


# ----------------------------------------------------------------------------- sweep
def sweep_findings(rows: list[dict[str, Any]]) -> list[Finding]:
    """Per target: the ranking by mean final accuracy. Whether a gap is real is said only by the
    paired comparison (`fedlab.report.sim.paired`): means and spreads of unpaired runs cannot."""
    out = []
    for target in dict.fromkeys(r["target"] for r in rows):
        cand = [
            r
            for r in rows
            if r["target"] == target
            and r["strategy"] not in REFERENCES  # rank federated strategies; references are the scale
            and number(r["final_target_acc"]["mean"]) is not None
        ]
        if len(cand) < 2:
            continue
        cand.sort(key=lambda r: r["final_target_acc"]["mean"], reverse=True)
        a, b = cand[0], cand[1]
        gap = a["final_target_acc"]["mean"] - b["final_target_acc"]["mean"]
        out.append(
            Finding(
                f"Target {target}: highest mean final accuracy {a['strategy']} "
                f"({pct(a['final_target_acc']['mean'])}), {pp(gap)} ahead of {b['strategy']}; "
                "the paired comparison says whether this is beyond noise.",
                "info",
                "comparison",
                values={"target": target, "best": a["strategy"], "runner_up": b["strategy"], "gap": gap},
            )
        )
    return out


def constant_predictor_findings(
    rows: list[dict[str, Any]], majority: dict[Any, tuple[float, float]]
) -> list[Finding]:
    """Per target: the strategies (references included) whose mean final accuracy does not beat
    always predicting the majority class beyond its noise (2 binomial SE of the rate on the test
    split), and those below it. Why: on an imbalanced target a paired "gain" between two models
    that are both no better than a constant says nothing about either."""
    out = []
    for target in dict.fromkeys(r["target"] for r in rows):
        if target not in majority:
            continue
        rate, noise = majority[target]
        accs = {r["strategy"]: number(r["final_target_acc"]["mean"]) for r in rows if r["target"] == target}
        below = [s for s, a in accs.items() if a is not None and a < rate - noise]
        level = [s for s, a in accs.items() if a is not None and rate - noise <= a <= rate + noise]
        if not below and not level:
            continue
        parts = []
        if level:
            parts.append(f"{', '.join(level)} no better than always predicting the majority class")
        if below:
            parts.append(f"{', '.join(below)} below that constant predictor")
        out.append(
            Finding(
                f"Target {target}, by mean final accuracy: {'; '.join(parts)} ({pct(rate)} ± "
                f"{100 * noise:.1f} pp, 2 SE on the test split). Accuracy differences among such rows are "
                "differences between near-constant predictors.",
                "warn",
                "comparison",
                values={"target": target, "majority_rate": rate, "level": level, "below": below},
            )
        )
    return out


def sweep_negative_transfer(runs: list[tuple[str, Rounds]]) -> list[Finding]:
    """Runs (label, rounds) with negative transfer in most rounds: a warning about one run each."""
    out = []
    for label, all_rounds in runs:
        rounds = [r for r in all_rounds if number(r.get("group_effect")) is not None]
        neg = [r.get("round") for r in rounds if negative_round(r)]
        with_ci = rounds and all(ge_interval(r) is not None for r in rounds)
        beyond = " with its 95 % interval over the test rows below 0" if with_ci else ""
        if neg and len(neg) * 2 > len(rounds):
            out.append(
                Finding(
                    f"{label}: Group Effect below 0{beyond} in {len(neg)} of {len(rounds)} rounds (one run).",
                    "warn",
                    "group_effect",
                )
            )
    return out
