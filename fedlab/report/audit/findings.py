"""Audit findings in words: changes against the baseline, risk sentences, and the headline few.

Every sentence formats its numbers with `fedlab.report.fmt.cell`, the same formatter the
tables use, so a finding never quotes a value that the table beside it prints differently.
A change is called out as real only when it exceeds the spread over seeds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fedlab.report.content import Finding, Section
from fedlab.report.fmt import cell, pct


def ratio_text(before: float, after: float) -> str:
    if before == 0 or math.isnan(before) or math.isnan(after):
        return ""
    return f", ×{after / before:.2f}"


# Direction of "better" per metric: "abs" = |x| smaller is fairer, "di" = closer to 1,
# "higher" / "lower" = plain direction.
# Convention shared with the console table and the report tables: a difference metric ("abs") is
# shown as its *signed* mean over seeds (privileged − unprivileged); fairer / worse is judged on the
# magnitude of that signed mean, so the numbers in a finding equal the ones in the tables.
SIGNED_LABEL = "signed mean, privileged − unprivileged"


def _worse(before: float, after: float, kind: str) -> bool:
    if kind == "abs":
        return abs(after) > abs(before)
    if kind == "lower":
        return after > before
    if kind == "di":
        return abs(1 - after) > abs(1 - before)
    return after < before  # "higher" is better


def change_finding(
    subject: str,
    metric_label: str,
    kind: str,
    before: Any,
    after: Any,
    topic: str,
    values: dict[str, Any],
    near_trivial: str = "",
    bad_is: str = "flag",
) -> Finding | None:
    """'<subject> lowers |EOD for sex| (signed mean, …) from +0.120 to +0.036, ×0.30 — improvement: …'.

    `before` / `after` map seed -> value (baseline vs privacy model; a plain sequence is taken as
    seeds 0, 1, ...). The verdict is `fedlab.metrics.judge.judge_change`: a change is real only
    with >= 3 paired seeds, a paired 95 % CI excluding 0 and an effect >= 0.01, and it is never
    GOOD when `near_trivial` names a near-trivial model of the pair.
    """
    from fedlab.metrics.judge import IMPROVEMENT, TOO_FEW, TRIVIAL, WORSE, judge_change

    b_map, a_map = _as_seed_map(before), _as_seed_map(after)
    if not b_map or not a_map:
        return None
    mb, ma = float(np.mean(list(b_map.values()))), float(np.mean(list(a_map.values())))
    size_b, size_a = (abs(mb), abs(ma)) if kind == "abs" else (mb, ma)
    fmt = "signed3" if kind == "abs" else "num3"
    if cell(mb, fmt) == cell(ma, fmt):
        verb = "leaves"
    elif cell(size_a, "num3") == cell(size_b, "num3"):
        verb = "moves"  # same magnitude, other sign
    else:
        verb = "raises" if size_a > size_b else "lowers"
    label = f"|{metric_label}| ({SIGNED_LABEL})" if kind == "abs" else metric_label
    ratio = ratio_text(size_b, size_a) if kind in ("abs", "di") else f", {cell(ma - mb, 'signed3')}"
    if verb == "leaves":
        text = f"{subject} leaves {label} at {cell(ma, fmt)}"
    else:
        text = f"{subject} {verb} {label} from {cell(mb, fmt)} to {cell(ma, fmt)}{ratio}"
    if kind == "di" and verb != "leaves":
        text += ", closer to parity" if abs(1 - ma) < abs(1 - mb) else ", further from parity"
    j = judge_change(b_map, a_map, kind, near_trivial=near_trivial, bad_is=bad_is)
    if j.verdict == TOO_FEW:
        text += f" — too few seeds to judge ({j.reason})"
    elif j.verdict == TRIVIAL:
        text += f" — not judged, the model is near-trivial ({near_trivial})"
    elif j.verdict in (IMPROVEMENT, WORSE):
        text += f" — {'better' if j.verdict == IMPROVEMENT else 'worse'}, beyond noise ({j.reason})"
    else:
        text += f" — within noise ({j.reason})"
    worse = _worse(mb, ma, kind)
    iv = j.interval
    extra = {"ci_low": iv.ci_low, "ci_high": iv.ci_high, "n_pairs": iv.n} if iv is not None else {}
    return Finding(
        text + ".",
        j.severity,
        topic,
        exceeds_spread=j.beyond_noise if j.verdict != TOO_FEW else None,
        values={**values, **extra, "before": mb, "after": ma, "worse": worse, "verdict": j.verdict},
    )


def _as_seed_map(values: Any) -> dict[int, float]:
    if isinstance(values, dict):
        items = values.items()
    else:
        items = enumerate(np.asarray(values, dtype=float).tolist())
    return {int(k): float(v) for k, v in items if v is not None and not math.isnan(float(v))}


def utility_caveat(f: Finding, drops: list[str], rate_fell: bool) -> Finding:
    """A fairness improvement in a cell whose balanced accuracy or F1 fell beyond noise is not GOOD:
    the finding says both ("… while F1 0.254 → 0.119: the model predicts fewer positives …")."""
    if f.severity != "good" or not drops:
        return f
    why = (
        "the model predicts the positive label less often for everyone"
        if rate_fell
        else "the gap may have shrunk because the model got worse"
    )
    text = f.text.rstrip(".") + f" — while {'; '.join(drops)}: {why}."
    return Finding(text, "warn", f.topic, f.exceeds_spread, {**f.values, "utility_fell": True})


def risk_findings(rows: list[Any], threshold: float) -> list[Finding]:
    """Before vs after re-identification risk, one sentence per released table."""
    out = []
    limit = round(1 / threshold)
    for r in rows:
        head = "Before anonymization" if r.label == "before" else f"After {r.label} ({r.algorithm})"
        if r.records == 0:
            continue
        unique = r.buckets.get("1", 0) / r.records
        text = (
            f"{head}: max prosecutor risk {cell(r.max_risk, 'num3')}, average {cell(r.avg_risk, 'num3')}; "
            f"{pct(r.share_above)} of records have risk > {threshold:g} (class size < {limit})"
        )
        text += f", {pct(unique)} are unique." if unique > 0 else "."
        sev = "info" if r.label == "before" else ("flag" if r.max_risk > threshold else "good")
        out.append(
            Finding(
                text,
                sev,
                "risk",
                values={"table": r.label, "max_risk": r.max_risk, "share_above": r.share_above},
            )
        )
    return out


# ----------------------------------------------------------------------------- truthful audit findings
LOW_RATE = 0.05  # below this selection rate a ratio of rates is noise, not a finding
KEY_TOPICS = ("utility", "individual")  # non-fairness topics whose real changes are key findings


def sign_sentence(summary: dict[str, Any]) -> str:
    """How to read a signed difference, following the schema's favourable label."""
    schema = summary.get("schema") or {}
    positive = schema.get("positive_label")
    favourable = schema.get("favourable_label")
    ds = summary.get("dataset") or {}
    if "favourable_is_positive" in ds:  # rates of the favourable outcome (AIF360's convention)
        return (
            f"differences are privileged − unprivileged of the rate of the favourable outcome "
            f"({ds.get('target')} = {ds.get('favourable_label')}): a positive difference means the "
            "privileged group gets the favourable outcome more often; disparate impact < 0.8 means the "
            "unprivileged group gets it less often (four-fifths rule)."
        )
    if favourable is None or str(favourable) == str(positive):
        return "differences are privileged − unprivileged (positive favours the privileged group)."
    return (
        f"differences are privileged − unprivileged of the rate of the predicted label {positive!r}, which "
        f"is the unfavourable outcome ({favourable!r} is favourable): a positive difference means the "
        "privileged group gets the unfavourable outcome more often."
    )


def _cell_of(a: Any, v: dict[str, Any]) -> Any:
    for c in a.cells:
        k = c.keys
        if (c.label, k.get("algorithm"), k.get("classifier"), k.get("client")) == (
            v.get("privacy_model"), v.get("algorithm"), v.get("classifier"), v.get("client"),
        ):  # fmt: skip
            return c
    return None


def _mean(c: Any, col: str) -> float:
    vals = c.values(col)
    return float(vals.mean()) if len(vals) else math.nan


def _guard_di(a: Any, attr: str, f: Finding) -> Finding:
    """Disparate impact as the ratio of mean selection rates; never headlined near zero rates."""
    c = _cell_of(a, f.values)
    base = a.baseline(c) if c is not None else None
    if c is None or base is None:
        return f
    rates = {
        "before": (_mean(base, f"{attr}_sr_priv"), _mean(base, f"{attr}_sr_unpriv")),
        "after": (_mean(c, f"{attr}_sr_priv"), _mean(c, f"{attr}_sr_unpriv")),
    }
    flat = [r for pair in rates.values() for r in pair]
    subject = a.subject(c)
    if any(math.isnan(r) for r in flat):
        return f
    if min(flat) < LOW_RATE:
        (pb, ub), (pa, ua) = rates["before"], rates["after"]
        return Finding(
            f"{subject}: disparate impact for {attr} is not reported as a change because a group's mean "
            f"selection rate is below {LOW_RATE} (privileged {pb:.3f} → {pa:.3f}, unprivileged "
            f"{ub:.3f} → {ua:.3f}); read the SPD finding instead.",
            "info",
            f.topic,
            exceeds_spread=False,
            values={**f.values, "low_rate": True},
        )
    before = rates["before"][1] / rates["before"][0]
    after = rates["after"][1] / rates["after"][0]
    tail = f.text.split(" — ", 1)[1] if " — " in f.text else ""
    parity = "closer to" if abs(1 - after) < abs(1 - before) else "further from"
    text = (
        f"{subject} moves disparate impact for {attr} (ratio of mean selection rates) from "
        f"{before:.3f} to {after:.3f}, {parity} parity" + (f" — {tail}" if tail else ".")
    )
    values = {**f.values, "before": before, "after": after}
    return Finding(text, f.severity, f.topic, f.exceeds_spread, values)


def _levels(c: Any) -> str:
    rows = getattr(c, "rows", None)
    if rows is None or "anon_levels" not in rows.columns:
        return ""
    return "|".join(sorted(map(str, rows["anon_levels"].tolist())))


def truthful(a: Any, attr: str, found: list[Finding]) -> list[Finding]:
    """Fairness findings made safe to headline: guarded disparate impact, identical cells merged.

    Two cells (e.g. k=25 and k=50) that produced the same anonymized tables in every seed give the
    same numbers; they become one finding naming both instead of two "independent" effects.
    """
    out: list[Finding] = []
    seen: dict[tuple[Any, ...], Finding] = {}
    for f in found:
        if str(f.values.get("metric", "")).endswith("_disparate_impact"):
            f = _guard_di(a, attr, f)
        c = _cell_of(a, f.values)
        lv = _levels(c) if c is not None else ""
        key = (f.values.get("metric"), f.values.get("before"), f.values.get("after"), lv)
        if lv and key in seen:
            first = seen[key]
            first.text = first.text.rstrip(".") + f" (same anonymized tables and numbers for {c.label})."
            continue
        seen[key] = f
        out.append(f)
    return out


def key_findings(secs: list[Section]) -> list[Finding]:
    """The headline: near-trivial models first, then the largest fairness changes beyond noise (never
    one resting on a group below the minimum size; if none, a note saying so and the first three),
    then utility / individual-fairness changes beyond it, then the risk sentences."""
    trivial = [f for s in secs for f in s.findings if f.topic == "near-trivial"][:3]
    fair = [
        f
        for s in secs
        for f in s.findings
        if f.topic.startswith("fairness") and f.exceeds_spread and not f.values.get("small_group")
    ]

    def rel(f: Finding) -> float:
        b, a = f.values.get("before") or 0.0, f.values.get("after") or 0.0
        return abs(a - b) / max(abs(b), 1e-9)

    out = sorted(fair, key=rel, reverse=True)[:6]
    if not out:
        out = [
            f
            for s in secs
            for f in s.findings
            if f.topic.startswith("fairness") and not f.values.get("small_group")
        ][:3]
        if out:
            out.insert(
                0,
                Finding(
                    "No group-fairness change is beyond noise (paired 95% CI over >= 3 seeds excluding 0).",
                    "info",
                    "fairness",
                ),
            )
    out += [f for s in secs for f in s.findings if f.topic in KEY_TOPICS and f.exceeds_spread][:3]
    out += [f for s in secs for f in s.findings if f.topic == "risk"][:3]
    return trivial + out
