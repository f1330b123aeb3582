"""The FedKA voting findings: what the clients' vote on the target pool reached and how right it was.

Own module because it owns the vote's vocabulary (the header, the plot caption and the findings
say a rule the same way) and the reference a vote accuracy is read against: the accuracy one
constant label would have on the same adopted samples.
"""

from __future__ import annotations

from typing import Any

from fedlab.report.content import Finding
from fedlab.report.fmt import number, pct

Rounds = list[dict[str, Any]]  # metrics.jsonl records, oldest round first


def _required_share(agreement: float | None) -> float | None:
    """The voters' share a winner needs beyond a strict majority (`vote_agreement` above 0.5), or
    None where the strict majority is the rule (also for runs made before it was recorded)."""
    return float(agreement) if agreement is not None and float(agreement) > 0.5 else None


def vote_requirement(agreement: float | None) -> str:
    """What a sample's vote had to reach, as a noun: the report header's and plot caption's form."""
    share = _required_share(agreement)
    if share is None:
        return "strict majority"
    return "unanimity" if share >= 1 else f"strict majority and at least {share:.0%} of the voters"


def vote_threshold(agreement: float | None) -> str:
    """What a sample's vote had to reach, as a findings sentence says it ("reached …")."""
    share = _required_share(agreement)
    if share is None:
        return "a strict-majority vote"
    if share >= 1:
        return "a unanimous vote"
    return f"a strict-majority vote of at least {share:.0%} of the voters"


def constant_reference(acc: float | None, constant: float | None, adopted: float | None) -> tuple[str, bool]:
    """The sentence that puts a vote accuracy next to one constant label's on the same adopted
    samples, and whether the votes are no better than it (within 2 SE): on a binary pool with a
    70 % majority, votes 72 % right teach the fine-tuning little more than "always the majority
    class" would. Empty and False for runs made before it was recorded."""
    if acc is None or constant is None:
        return "", False
    text = f" Labelling every adopted sample with their most frequent true class: {pct(constant)} correct"
    if acc <= constant:
        return text + ": the votes are no better than one constant label.", True
    noise = 2 * (constant * (1 - constant) / adopted) ** 0.5 if adopted else 0.0
    if acc <= constant + noise:
        return text + f": the votes are within 2 SE ({100 * noise:.1f} pp) of one constant label.", True
    return text + ".", False


def voting_findings(rounds: Rounds, rule: str | None = None, agreement: float | None = None) -> list[Finding]:
    """The last voting round's adoption and vote accuracy. `rule` and `agreement` are the run's
    recorded `vote_rule` and `vote_agreement` (None for runs made before they were recorded): under
    "plurality" every sample has a winner, so the vote's rate is not a strict-majority rate and is
    not called one; a stricter agreement is named as such."""
    last = next((r for r in reversed(rounds) if r.get("voting_acc") is not None), None)
    if last is None:
        return []
    adopt, acc, acc_all = (number(last.get(k)) for k in ("adoption_rate", "voting_acc", "voting_acc_all"))
    majority, majority_acc = number(last.get("majority_rate")), number(last.get("majority_acc"))
    reached = vote_threshold(agreement)
    if rule == "plurality":
        text = (
            f"Round {last.get('round')}: the plurality vote (no majority required) labelled every target "
            f"pool sample, {pct(acc_all)} correct; {pct(adopt)} of the pool were adopted as pseudo-labels, "
            f"{pct(acc)} correct."
        )
    elif majority is None:  # runs from before confidence selection: every majority vote was adopted
        text = (
            f"Round {last.get('round')}: {pct(adopt)} of the target pool reached {reached}; "
            f"those pseudo-labels were {pct(acc)} correct (plain vote on all samples: {pct(acc_all)})."
        )
    else:
        text = (
            f"Round {last.get('round')}: {pct(majority)} of the target pool reached {reached} "
            f"({pct(majority_acc)} correct); the most confident {pct(adopt)} of the pool were adopted, "
            f"{pct(acc)} correct (plain vote on all samples: {pct(acc_all)})."
        )
    constant = number(last.get("voting_constant_acc"))
    reference, near_constant = constant_reference(acc, constant, number(last.get("adopted")))
    text += reference
    low = near_constant or (acc is not None and acc < 0.5)
    values = {"adoption_rate": adopt, "voting_acc": acc, "voting_constant_acc": constant}
    out = [Finding(text, "warn" if low else "info", "voting", values=values)]
    voted = [r for r in rounds if r.get("voting_acc") is not None]
    reasons = {  # record flag -> why the voting step kept the averaged model that round
        "finetune_skipped": "fewer votes were adopted than the floor `training.vote_min_per_class` per class",
        "consensus_skipped": "too little of the pool reached the vote (`training.vote_min_consensus`)",
    }
    for flag, reason in reasons.items():
        skipped = sum(1 for r in voted if r.get(flag))
        if skipped:
            out.append(
                Finding(
                    f"Fine-tuning on the votes was skipped in {skipped} of {len(voted)} voting rounds: "
                    f"{reason}, so those rounds kept the averaged model, as FedKA without voting does"
                    + (
                        " — none fine-tuned: this run is FedKA without voting."
                        if skipped == len(voted)
                        else "."
                    ),
                    "info",
                    "voting",
                    values={f"{flag}_rounds": skipped, "voting_rounds": len(voted)},
                )
            )
    return out
