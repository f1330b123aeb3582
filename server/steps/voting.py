"""FedKA's federated voting (Sun, Chong & Ochiai 2022) as a server step on any aggregation.

After averaging, every client's returned model votes on each target pool sample; the most voted
class becomes the pseudo-label (adopted by `vote_rule`, see `fedlab.learn.voting`) and the global
model is fine-tuned on the adopted samples with loss weight α = ramp(round/rounds), from the
round after `vote_warmup` × rounds on. Voting accuracy (against the held-back pool labels, for
reporting only) and the adoption rate are logged.

Two choices differ from the reference notebook (a third, the strict-majority `vote_rule`, is
also a switch), because without them fine-tuning on the votes lowered target accuracy below
FedAvg's (measured in `bench/bench_fedka_ablation.py`):

* Voters predict with BatchNorm statistics of the target pool (AdaBN, `target_batchnorm`).
  Clients return models whose statistics come from their source domain, while the global
  model, fine-tuned on the target, carries target statistics; with source statistics the votes
  were worse than the model they were meant to teach.
* Of the majority-voted samples only the most confident share is adopted, per voted class
  (`select`, class-balanced self-training). Every client starts from the same global model, so
  the votes agree on ~90 % of the pool and majority alone filters almost nothing; the voters'
  mean probability of the winning class does separate right from wrong votes, and balancing per
  class keeps the fine-tuning from teaching the easy classes only.

`select = 1` with `target_batchnorm = False` and `rule = "plurality"` is the reference rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import ArrayRecord

from fedlab.config import TrainingConfig
from fedlab.learn.mmd import ramp
from fedlab.learn.spec import finetune_spec
from fedlab.learn.training import LocalTrainSpec, capped_steps, finetune_pseudo
from fedlab.learn.voting import confidence_of, majority_vote, select_class_balanced
from fedlab.wire.arrays import state_record


@dataclass
class VotingStep:
    """Vote on the target pool, adopt by rule and confidence, fine-tune the global model."""

    agreement: float = 0.5
    rule: str = "majority"
    warmup: float = 0.0
    select: float = 1.0
    target_batchnorm: bool = False
    finetune_steps: int = 20
    max_epochs_per_round: float = 0.0
    spec: LocalTrainSpec = field(default_factory=LocalTrainSpec)
    num_rounds: int = 1
    seed: int = 0

    @classmethod
    def from_settings(cls, training: TrainingConfig, seed: int) -> VotingStep:
        """The step as the run's training settings configure it."""
        t = training
        return cls(
            agreement=t.vote_agreement,
            rule=t.vote_rule,
            warmup=t.vote_warmup,
            select=t.vote_select,
            target_batchnorm=t.vote_target_batchnorm,
            finetune_steps=t.finetune_steps,
            max_epochs_per_round=t.max_epochs_per_round,
            spec=finetune_spec(t),
            num_rounds=t.rounds,
            seed=seed,
        )

    def active(self, server_round: int) -> bool:
        """Clients vote from the round after the warm-up on."""
        return server_round > self.warmup * self.num_rounds

    def apply(
        self,
        server_round: int,
        arrays: ArrayRecord,
        client_pool_probs: np.ndarray,
        target: Any,
        record: dict[str, Any],
    ) -> ArrayRecord:
        """Vote, adopt, fine-tune; the voting accuracy uses the pool's held-back labels only to
        report it (nothing here decides anything from them)."""
        vote = majority_vote(client_pool_probs.argmax(axis=2), target.num_classes, self.agreement, self.rule)
        record["majority_rate"] = vote.adoption_rate
        record["majority_acc"] = vote.accuracy(target.y_pool_hidden)
        vote = select_class_balanced(vote, confidence_of(client_pool_probs, vote.labels), self.select)
        alpha = ramp(server_round / self.num_rounds)
        record["voting_acc"] = vote.accuracy(target.y_pool_hidden)
        record["voting_acc_all"] = vote.accuracy(target.y_pool_hidden, adopted_only=False)
        record["adoption_rate"] = vote.adoption_rate
        record["voting_alpha"] = alpha
        adopted = np.flatnonzero(vote.adopted)
        steps = capped_steps(
            self.finetune_steps, len(adopted), self.spec.batch_size, self.max_epochs_per_round
        )
        model = target.model_from(arrays)
        record["finetune_loss"] = finetune_pseudo(
            model,
            target.x_pool[adopted],
            vote.labels[adopted],
            steps=steps,
            weight=alpha,
            spec=self.spec,
            device=target.device,
            seed=self.seed * 100_003 + server_round,
        )
        return state_record(model.state_dict())
