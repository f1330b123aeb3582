"""The simulation report reads a vote accuracy against one constant label on the same adopted
samples, and lists each client domain once with its number of clients."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import ArrayRecord

from fedlab.learn.models import FeatureMLP
from fedlab.learn.training import LocalTrainSpec
from fedlab.learn.voting import VoteResult
from fedlab.report.sim.sections import client_domains
from fedlab.report.sim.voting import voting_findings
from server.steps.voting import VotingStep


def test_constant_label_accuracy_is_the_most_frequent_true_class_among_the_adopted() -> None:
    labels, votes = np.array([1, 1, 0, 0, 1]), np.array([3, 3, 3, 2, 3])
    vote = VoteResult(labels=labels, votes=votes, adopted=np.array([1, 1, 1, 0, 1], bool))
    y = np.array([1, 0, 1, 0, 1])  # adopted true labels 1, 0, 1, 1: class 1 is 3 of 4
    assert vote.constant_label_accuracy(y) == 0.75
    assert vote.accuracy(y) == 0.5
    assert np.isnan(VoteResult(vote.labels, vote.votes, np.zeros(5, bool)).constant_label_accuracy(y))


def test_the_voting_step_records_the_constant_label_reference() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    torch.manual_seed(0)
    arrays = ArrayRecord(FeatureMLP(6, 2).state_dict())
    probs = np.stack([np.eye(2)[(x[:, 0] > 0).astype(int)]] * 3).astype(np.float32)

    class Target:
        x_pool, device, num_classes = x, torch.device("cpu"), 2
        y_pool_hidden = (x[:, 1] > 0.5).astype(int)  # a pool label the vote does not follow

        def model_from(self, a: ArrayRecord) -> FeatureMLP:
            m = FeatureMLP(6, 2)
            m.load_state_dict(a.to_torch_state_dict())
            return m

    step = VotingStep(rule="plurality", finetune_steps=2, num_rounds=2)
    step.spec = LocalTrainSpec(lr=0.05, batch_size=16)
    record: dict = {}
    step.apply(2, arrays, probs, Target(), record)
    y = Target.y_pool_hidden
    assert record["adopted"] == 40
    assert record["voting_constant_acc"] == max(y.mean(), 1 - y.mean())


def _finding(acc: float, constant: float | None, adopted: int = 300) -> tuple[str, str]:
    last = {"round": 3, "voting_acc": acc, "voting_acc_all": acc, "adoption_rate": 0.5, "adopted": adopted}
    if constant is not None:
        last["voting_constant_acc"] = constant
    (f,) = voting_findings([last], rule="plurality")
    return f.text, f.severity


def test_a_vote_accuracy_is_read_against_one_constant_label() -> None:
    text, severity = _finding(0.60, 0.70)
    assert "class: 70.0% correct: the votes are no better than one constant label" in text
    assert severity == "warn"
    text, severity = _finding(0.72, 0.70)  # 2 SE of 70 % on 300 samples = 5.3 pp
    assert "within 2 SE (5.3 pp) of one constant label" in text and severity == "warn"
    text, severity = _finding(0.95, 0.55)
    assert text.endswith("class: 55.0% correct.") and severity == "info"
    text, _ = _finding(0.95, None)  # runs made before the reference was recorded say nothing about it
    assert "constant" not in text


def test_client_domains_are_listed_once_with_their_number_of_clients() -> None:
    assert client_domains(["Female", "Female"]) == "Female (2 clients)"
    assert client_domains(["a", "b", "a", "c"]) == "a (2 clients), b, c"
    assert client_domains([]) == "?"
