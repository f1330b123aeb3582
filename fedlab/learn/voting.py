"""Federated voting (FedKA): clients' models vote on each target sample.

The most voted class becomes the pseudo-label. Ties are broken toward the smallest
class index among the tied classes (deterministic; the reference notebook's
``max(set(votes), key=votes.count)`` does the same for class ids 0-9). Which samples are
*adopted* for fine-tuning is the rule: ``"majority"`` (fedlab's default) only those whose
winner has a strict majority of votes (more than half of the voters), ``"plurality"`` (the
reference notebook) every sample. With two voters that disagree, plurality adopts a coin flip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class VoteResult:
    """The outcome of a vote on the target pool: winner, its vote count and which samples are adopted."""
    labels: np.ndarray  # (N,) winning class per sample
    votes: np.ndarray  # (N,) number of voters agreeing with the winner
    adopted: np.ndarray  # (N,) bool: adopted by the rule (and confident enough, see below)

    @property
    def adoption_rate(self) -> float:
        """Share of the pool adopted for fine-tuning."""
        return float(self.adopted.mean()) if len(self.adopted) else 0.0

    def accuracy(self, y_true: np.ndarray, adopted_only: bool = True) -> float:
        """Accuracy of the pseudo-labels against the pool's held-back labels (reporting only; nothing decides
        on it)."""
        mask = self.adopted if adopted_only else np.ones_like(self.adopted)
        if not mask.any():
            return float("nan")
        return float((self.labels[mask] == y_true[mask]).mean())

    def constant_label_accuracy(self, y_true: np.ndarray) -> float:
        """The accuracy one constant label would have on the adopted samples (their most frequent
        true class): the reference a vote accuracy needs on an imbalanced pool, where 90 % right
        can be no better than labelling every sample with the majority class (reporting only)."""
        if not self.adopted.any():
            return float("nan")
        return float(np.bincount(y_true[self.adopted]).max() / self.adopted.sum())


VOTE_RULES = ("majority", "plurality")


def majority_vote(
    predictions: np.ndarray, num_classes: int, min_agreement: float = 0.5, rule: str = "majority"
) -> VoteResult:
    """`predictions` is (voters, N) int class ids; returns per-sample winner and adoption.

    ``rule="majority"``: a sample is adopted when its winner has a strict majority *and* at
    least ``ceil(min_agreement · voters)`` votes (``min_agreement=1`` demands unanimity).
    ``rule="plurality"``: every sample is adopted (`min_agreement` is not used).
    """
    if not 0 < min_agreement <= 1:
        raise ValueError(f"min_agreement must be in (0, 1], got {min_agreement}")
    if rule not in VOTE_RULES:
        raise ValueError(f"rule must be one of {VOTE_RULES}, got {rule!r}")
    predictions = np.asarray(predictions)
    if predictions.ndim != 2 or predictions.shape[0] == 0:
        raise ValueError("majority_vote expects a (voters, samples) array with at least one voter")
    voters, n = predictions.shape
    counts = np.zeros((n, num_classes), dtype=np.int64)
    for row in predictions:
        counts[np.arange(n), row] += 1
    labels = counts.argmax(axis=1)  # argmax returns the first (smallest) index on ties
    votes = counts[np.arange(n), labels]
    if rule == "plurality":
        adopted = np.ones(n, dtype=bool)
    else:
        adopted = (votes * 2 > voters) & (votes >= int(np.ceil(min_agreement * voters - 1e-9)))
    return VoteResult(labels=labels, votes=votes, adopted=adopted)


def confidence_of(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Voters' mean probability of each sample's voted label; `probabilities` is (voters, N, C)."""
    probabilities = np.asarray(probabilities)
    return probabilities[:, np.arange(len(labels)), labels].mean(axis=0)


def select_class_balanced(vote: VoteResult, confidence: np.ndarray, fraction: float) -> VoteResult:
    """Keep, per voted class, the `fraction` most confident of its adopted samples.

    Self-training selects by confidence because the most confident votes are far more often
    right than the average one; selecting *per class* (as class-balanced self-training does)
    stops the easiest classes from taking every slot, which would teach the model to predict
    only those classes on the target. At least one sample of every class with an adopted
    vote is kept; ties in confidence go to the smaller sample index.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return vote
    keep = np.zeros_like(vote.adopted)
    for c in np.unique(vote.labels[vote.adopted]):
        members = np.flatnonzero(vote.adopted & (vote.labels == c))
        order = members[np.argsort(-confidence[members], kind="stable")]
        keep[order[: max(1, int(np.ceil(fraction * len(members))))]] = True
    return VoteResult(labels=vote.labels, votes=vote.votes, adopted=keep)


def holdout_split(vote: VoteResult, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, check) indices of the adopted samples: per voted class, a seeded `share` is held out.

    Why: the vote-reliability guard needs a test of fine-tuning that uses no target labels. Votes
    the fine-tuning never saw are such a test: a fine-tuned model that agrees with them no more
    often than the averaged model did learned nothing that transfers (or unlearned something).
    Classes with one adopted sample keep it for fitting."""
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share}")
    rng = np.random.default_rng(seed)
    fit, check = [], []
    for c in np.unique(vote.labels[vote.adopted]):
        members = rng.permutation(np.flatnonzero(vote.adopted & (vote.labels == c)))
        k = int(np.floor(share * len(members)))
        check.append(members[:k])
        fit.append(members[k:])
    cat = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
    return cat(fit), cat(check)
