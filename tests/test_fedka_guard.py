"""FedKA's label-free guard: holdout split of the votes, head-only / proximal fine-tuning, fedka-ref."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import ArrayRecord

from fedlab.config import load_simulation_config
from fedlab.learn.models import FeatureMLP
from fedlab.learn.training import LocalTrainSpec, finetune_pseudo
from fedlab.learn.voting import VoteResult, holdout_split
from fedlab.report.sim.sections import voting_description
from fedlab.report.sim.voting import voting_findings
from server.steps.voting import VotingStep
from server.strategies import resolve_strategy
from server.strategies.settings import StrategySettings


def _vote(labels: list[int], adopted: list[bool]) -> VoteResult:
    n = len(labels)
    return VoteResult(np.array(labels), np.ones(n, dtype=int), np.array(adopted))


def test_holdout_split_is_per_class_disjoint_seeded_and_skips_unadopted() -> None:
    labels = [0] * 10 + [1] * 5 + [2] * 1 + [0] * 4
    adopted = [True] * 16 + [False] * 4
    fit, check = holdout_split(_vote(labels, adopted), 0.2, seed=3)
    assert set(fit).isdisjoint(check) and set(fit) | set(check) == set(range(16))
    assert sorted(np.array(labels)[check].tolist()) == [0, 0, 1]  # 20 % of 10 and of 5; none of 1
    again = holdout_split(_vote(labels, adopted), 0.2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((fit, check), again, strict=True))


def test_head_only_finetuning_leaves_the_extractor_and_prox_limits_the_move() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8)).astype(np.float32), rng.integers(0, 3, 64)
    spec = LocalTrainSpec(lr=0.5, momentum=0.0, weight_decay=0.0, batch_size=16)
    torch.manual_seed(0)
    start = FeatureMLP(8, 3)
    head = FeatureMLP(8, 3)
    head.load_state_dict(start.state_dict())
    cpu = torch.device("cpu")
    finetune_pseudo(head, x, y, steps=10, weight=1.0, spec=spec, device=cpu, seed=1, scope="head")
    for (name, a), b in zip(start.named_parameters(), head.parameters(), strict=True):
        assert torch.equal(a, b) == name.startswith("extractor"), name
    moved = {}
    for prox in (0.0, 2.0):  # lr·μ = 1: the pull is strong but stable
        m = FeatureMLP(8, 3)
        m.load_state_dict(start.state_dict())
        finetune_pseudo(m, x, y, steps=10, weight=1.0, spec=spec, device=cpu, seed=1, prox=prox)
        pairs = zip(m.parameters(), start.parameters(), strict=True)
        moved[prox] = sum(float((p - q).detach().pow(2).sum()) for p, q in pairs)
    assert moved[2.0] < moved[0.0] / 2


def test_fine_tuning_keeps_the_averaged_models_batchnorm_statistics_only_when_asked() -> None:
    """Issue #26, variant 22: "keep" fine-tunes with eval-mode BatchNorm, so the running statistics
    are the averaged model's after it (the weights still move); "adapt" (the reference) moves them
    towards the adopted target rows'. The step records which ran and passes it through."""
    rng = np.random.default_rng(0)
    x, y = (rng.normal(size=(64, 8)) * 3 + 2).astype(np.float32), rng.integers(0, 3, 64)
    spec = LocalTrainSpec(lr=0.1, momentum=0.0, weight_decay=0.0, batch_size=16)
    torch.manual_seed(0)
    start = FeatureMLP(8, 3)
    stats = {k: v.clone() for k, v in start.state_dict().items() if "running_" in k}
    assert stats
    for mode in ("keep", "adapt"):
        m = FeatureMLP(8, 3)
        m.load_state_dict(start.state_dict())
        cpu = torch.device("cpu")
        finetune_pseudo(m, x, y, steps=5, weight=1.0, spec=spec, device=cpu, seed=1, batchnorm=mode)
        kept = all(torch.equal(m.state_dict()[k], v) for k, v in stats.items())
        assert kept == (mode == "keep"), mode
        assert not torch.equal(m.classifier.weight, start.classifier.weight)
    cfg = load_simulation_config(None, {"training.finetune_batchnorm": "keep"}).training
    step = VotingStep.from_settings(cfg, seed=0)
    assert step.batchnorm == "keep" and step.settings()["finetune_batchnorm"] == "keep"
    assert VotingStep.reference(cfg, seed=0).batchnorm == "adapt"  # fedka-ref runs the notebook's step
    assert VotingStep.from_settings(load_simulation_config(None, {}).training, 0).batchnorm == "adapt"
    line = voting_description({**step.settings(), "vote_min_consensus": 0.0}, "fedka")
    assert "keeps the averaged model's BatchNorm statistics" in line


class _Target:
    """A minimal server target: a pool and a scratch model (what the voting step reads)."""

    def __init__(self, x: np.ndarray, classes: int = 2) -> None:
        self.x_pool, self.device, self.num_classes = x, torch.device("cpu"), classes
        self.y_pool_hidden = np.zeros(len(x), dtype=int)

    def model_from(self, arrays: ArrayRecord) -> FeatureMLP:
        m = FeatureMLP(self.x_pool.shape[1], self.num_classes)
        m.load_state_dict(arrays.to_torch_state_dict())
        return m


def test_the_guard_keeps_the_averaged_model_when_fine_tuning_does_not_carry_over() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    torch.manual_seed(0)
    arrays = ArrayRecord(FeatureMLP(6, 2).state_dict())
    # random votes: held-out votes cannot be learned from the others
    probs = np.stack([np.eye(2)[rng.integers(0, 2, 200)] for _ in range(3)]).astype(np.float32)
    probs[:] = probs[0]  # unanimous, so every sample is adopted
    step = VotingStep(guard="holdout", rule="plurality", finetune_steps=30, num_rounds=2)
    step.spec = LocalTrainSpec(lr=0.05, batch_size=16)
    record: dict = {}
    out = step.apply(2, arrays, probs, _Target(x), record)
    assert record["guard_check"] >= 20
    assert record["guard_p"] >= 0.05 and not record["guard_accepted"]
    assert out is arrays  # rejected: the round keeps the averaged model
    # learnable votes (a linear rule of the input): fine-tuning carries over and is kept
    labels = (x[:, 0] > 0).astype(int)
    probs = np.stack([np.eye(2)[labels]] * 3).astype(np.float32)
    record = {}
    step.finetune_steps = 200
    out = step.apply(2, arrays, probs, _Target(x), record)
    assert record["guard_accepted"] and out is not arrays and record["guard_p"] < 0.05


def test_fedka_ref_uses_the_reference_rule_whatever_the_settings() -> None:
    cfg = load_simulation_config(None, {"training.vote_guard": "holdout", "training.finetune_scope": "head"})
    settings = StrategySettings(training=cfg.training, seed=0, num_clients=2)
    ref = resolve_strategy("fedka-ref").cls.settings_kwargs(settings)["voting"]
    got = (ref.rule, ref.select, ref.target_batchnorm, ref.scope, ref.prox, ref.guard, ref.min_per_class)
    assert got == ("plurality", 1.0, False, "all", 0.0, "off", 0)
    assert (ref.clients_start, ref.optimizer_state) == ("averaged", "run")  # the notebook's server loop
    default = resolve_strategy("fedka").cls.settings_kwargs(settings)["voting"]
    assert (default.guard, default.scope) == ("holdout", "head")


def test_the_summary_and_report_say_which_fedka_ran() -> None:
    """Issue #26: `fedka-ref` overrides the config, so the run records the step's effective values
    and the report's header spells them out next to the strategy."""
    cfg = load_simulation_config(None, {"training.finetune_scope": "head"})
    settings = StrategySettings(training=cfg.training, seed=0, num_clients=2)
    ref = resolve_strategy("fedka-ref").cls.settings_kwargs(settings)["voting"].settings()
    mine = resolve_strategy("fedka").cls.settings_kwargs(settings)["voting"].settings()
    keys = ("vote_rule", "finetune_scope", "vote_clients_start")
    assert [ref[k] for k in keys] == ["plurality", "all", "averaged"]
    assert [mine[k] for k in keys] == ["majority", "head", "finetuned"]
    ref_line = voting_description(ref, "fedka-ref")
    assert ref_line.startswith("plurality (every sample), all adopted; voters' own BatchNorm")
    assert "proximal μ = 0" in ref_line and "optimizer kept for the run" in ref_line
    assert "clients start from the averaged model" in ref_line and ref_line.endswith("rule and server loop")
    line = voting_description(mine, "fedka")
    assert "strict majority, the most confident 50% per class adopted" in line
    assert "fine-tuning the head only, proximal μ = 1" in line and "reference" not in line
    # under the plurality rule every sample has a winner: its vote rate is not called a strict majority
    last = {"round": 4, "voting_acc": 0.4, "voting_acc_all": 0.4, "adoption_rate": 1.0, "majority_rate": 1.0}
    (plural,) = voting_findings([{**last, "majority_acc": 0.4}], rule="plurality")
    assert "strict-majority" not in plural.text and "plurality vote (no majority required)" in plural.text
    (strict,) = voting_findings([{**last, "majority_acc": 0.4}], rule="majority")
    assert "reached a strict-majority vote" in strict.text
    # a stricter `vote_agreement` is named as what it is, in the finding and in the header
    (strict60,) = voting_findings([{**last, "majority_acc": 0.4}], rule="majority", agreement=0.6)
    assert "reached a strict-majority vote of at least 60% of the voters" in strict60.text
    assert voting_description({**mine, "vote_agreement": 1.0}, "fedka").startswith("unanimity, ")


def test_fedkas_default_fine_tuning_is_proximal_and_one_switch_turns_it_off() -> None:
    """Issue #26: the default pulls the fine-tuned model towards the averaged one (mu = 1)."""
    step = VotingStep.from_settings(load_simulation_config(None, {}).training, seed=0)
    assert (step.prox, step.guard, step.select, step.target_batchnorm) == (1.0, "off", 0.5, True)
    assert step.min_per_class == 0  # the vote floor failed its confirmation (issue #26): a switch only
    off = VotingStep.from_settings(load_simulation_config(None, {"training.finetune_prox": 0}).training, 0)
    assert off.prox == 0.0


def test_the_vote_floor_keeps_the_averaged_model_when_too_few_votes_are_adopted() -> None:
    """Issue #26: below `vote_min_per_class` adopted votes per class a round does not fine-tune (a
    small pool re-adopts the same few votes every round); at the floor it does, and a report says
    in how many voting rounds fine-tuning was skipped."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    torch.manual_seed(0)
    arrays = ArrayRecord(FeatureMLP(6, 2).state_dict())
    probs = np.stack([np.eye(2)[(x[:, 0] > 0).astype(int)]] * 3).astype(np.float32)  # unanimous: 40 adopted
    step = VotingStep(rule="plurality", finetune_steps=5, num_rounds=2, min_per_class=21)
    step.spec = LocalTrainSpec(lr=0.05, batch_size=16)
    below: dict = {}
    assert step.apply(2, arrays, probs, _Target(x), below) is arrays  # 40 < 21 x 2 classes
    assert below["adopted"] == 40 and below["finetune_skipped"] and "finetune_loss" not in below
    step.min_per_class = 20
    at: dict = {}
    out = step.apply(2, arrays, probs, _Target(x), at)
    assert out is not arrays and "finetune_skipped" not in at and at["finetune_loss"] > 0
    first = {"round": 1, "voting_acc": 0.9, "adoption_rate": 1.0}
    rounds = [first, {"round": 2, **below}, {"round": 3, **at}]
    texts = [f.text for f in voting_findings(rounds)]
    assert any("skipped in 1 of 3 voting rounds" in t for t in texts), texts
    assert not any("skipped" in f.text for f in voting_findings([rounds[0], rounds[2]]))


def test_the_consensus_floor_skips_fine_tuning_when_the_voters_split_on_most_of_the_pool() -> None:
    """`vote_min_consensus`: a round fine-tunes only when at least that share of the pool reaches a
    strict-majority vote; the report and the summary's `voting` say so."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    torch.manual_seed(0)
    arrays = ArrayRecord(FeatureMLP(6, 3).state_dict())
    truth = rng.integers(0, 3, 40)
    unanimous = np.stack([np.eye(3)[truth]] * 3).astype(np.float32)
    split = unanimous.copy()  # on 30 of the 40 rows the three voters name three different classes
    split[1, :30], split[2, :30] = np.eye(3)[(truth[:30] + 1) % 3], np.eye(3)[(truth[:30] + 2) % 3]
    step = VotingStep(rule="majority", finetune_steps=5, num_rounds=2, min_consensus=0.5)
    step.spec = LocalTrainSpec(lr=0.05, batch_size=16)
    low: dict = {}
    assert step.apply(2, arrays, split, _Target(x, classes=3), low) is arrays
    assert low["majority_rate"] == 0.25 and low["consensus_skipped"] and "finetune_loss" not in low
    step.min_consensus = 0.25  # at the floor: fine-tunes on the 10 agreed rows
    at: dict = {}
    assert step.apply(2, arrays, split, _Target(x, classes=3), at) is not arrays and at["finetune_loss"] > 0
    agreed: dict = {}
    step.min_consensus = 0.5
    assert step.apply(2, arrays, unanimous, _Target(x, classes=3), agreed) is not arrays
    assert "consensus_skipped" not in agreed and step.settings()["vote_min_consensus"] == 0.5
    rounds = [{"round": 1, **agreed}, {"round": 2, **low}]
    texts = [f.text for f in voting_findings(rounds)]
    assert any("skipped in 1 of 2 voting rounds: too little of the pool reached the vote" in t for t in texts)
    assert VotingStep.reference(load_simulation_config(None, {}).training, 0).min_consensus == 0.0


def test_the_progress_line_says_when_a_round_stayed_below_the_vote_floor() -> None:
    from fedlab.cli.simulate import _round_status

    record = {"target_acc": 0.5, "group_effect": 0.01, "voting_acc": 0.7, "adoption_rate": 0.4}
    assert "floor" not in _round_status(record)
    skipped = _round_status({**record, "finetune_skipped": True})
    assert skipped.endswith("(below the vote floor: no fine-tuning)")


def test_a_run_long_optimizer_carries_adams_state_from_one_fine_tuning_to_the_next() -> None:
    """The reference notebook fine-tunes with one Adam over the whole run; fedlab's default starts a
    fresh one every round (`finetune_optimizer_state`)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 8)).astype(np.float32), rng.integers(0, 3, 64)
    spec = LocalTrainSpec(lr=1e-3, batch_size=16, optimizer="adam")
    cpu, carried = torch.device("cpu"), {}
    torch.manual_seed(0)
    model = FeatureMLP(8, 3)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(2):
        finetune_pseudo(model, x, y, steps=3, weight=1.0, spec=spec, device=cpu, seed=1, carried=carried)
    steps = [float(s["step"]) for s in carried["optimizer"]["state"].values()]
    assert steps and all(s == 6 for s in steps)  # 2 calls x 3 steps on one optimizer
    fresh, kept = FeatureMLP(8, 3), FeatureMLP(8, 3)
    for m, state in ((fresh, None), (kept, carried)):
        m.load_state_dict(start)
        finetune_pseudo(m, x, y, steps=1, weight=1.0, spec=spec, device=cpu, seed=2, carried=state)
    moved = {
        name: sum(float((p.detach() - start[n]).abs().sum()) for n, p in m.named_parameters())
        for name, m in (("fresh", fresh), ("kept", kept))
    }
    assert moved["kept"] != moved["fresh"]  # the carried moments change the step


def test_clients_can_start_from_the_averaged_model_as_the_notebooks_clients_do() -> None:
    """`vote_clients_start = "averaged"`: the fine-tuned model is the global (scored, saved, embedding)
    one, the next round's train messages carry the averaged model; "finetuned" sends the global one."""
    from server.strategies.fedka import FedKA

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    torch.manual_seed(0)
    averaged = ArrayRecord(FeatureMLP(6, 2).state_dict())
    probs = np.stack([np.eye(2)[(x[:, 0] > 0).astype(int)]] * 3).astype(np.float32)
    sent: dict = {}
    for start in ("averaged", "finetuned"):
        step = VotingStep(rule="plurality", finetune_steps=5, num_rounds=2, clients_start=start)
        step.spec = LocalTrainSpec(lr=0.05, batch_size=16)
        strategy = FedKA(voting=step)
        strategy.setup_domain(_Target(x), None)
        strategy._round = {"round": 1}
        finetuned = strategy.after_aggregation(1, averaged, probs)
        assert finetuned is not averaged

        def capture(nodes, parent, rnd, arrays, config, grid, key=start):
            sent[key] = arrays
            return []

        strategy._configure_for = capture
        strategy.configure_train(2, finetuned, None, None)  # type: ignore[arg-type]
        assert strategy._current_arrays is finetuned  # what a round without replies keeps
    assert sent["averaged"] is averaged and sent["finetuned"] is not averaged
