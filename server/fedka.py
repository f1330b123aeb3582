"""FedKA (Sun, Chong & Ochiai): feature distribution matching + federated voting.

Per round: (1) target embeddings from the global extractor go to the clients (f-DAN's
`configure_train`); (2) clients train with cross-entropy + α·MK-MMD; (3) after FedAvg
aggregation, every client's returned model votes on each target pool sample; the
majority (strict, see `fedlab.voting`) becomes the pseudo-label and the global model is
fine-tuned on the adopted samples with loss weight α = ramp(round/rounds), from the round after
`vote_warmup` × rounds on (before that FedKA is f-DAN). Voting accuracy
(against the held-back pool labels) and the adoption rate are logged. `voting=False`
gives the ablation (equivalent to f-DAN).
"""

from __future__ import annotations

import numpy as np
from flwr.app import ArrayRecord

from fedlab.mmd import ramp
from fedlab.training import LocalTrainSpec, finetune_pseudo
from fedlab.voting import majority_vote
from server.fdan import FDAN


class FedKA(FDAN):
    client_mode = "mmd"

    def __init__(
        self,
        *args,
        voting: bool = True,
        vote_agreement: float = 0.5,
        vote_warmup: float = 0.0,
        finetune_steps: int = 20,
        finetune_spec: LocalTrainSpec | None = None,
        num_rounds: int = 1,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.voting = voting
        self.vote_agreement = vote_agreement
        self.vote_warmup = vote_warmup
        self.finetune_steps = finetune_steps
        self.finetune_spec = finetune_spec or LocalTrainSpec()
        self.num_rounds = num_rounds
        self.seed = seed

    def after_aggregation(
        self, server_round: int, arrays: ArrayRecord, client_pool_preds: np.ndarray
    ) -> ArrayRecord:
        if not self.voting or server_round <= self.vote_warmup * self.num_rounds:
            return arrays
        vote = majority_vote(client_pool_preds, self.target.num_classes, self.vote_agreement)
        alpha = ramp(server_round / self.num_rounds)
        self._round["voting_acc"] = vote.accuracy(self.target.y_pool_hidden)
        self._round["voting_acc_all"] = vote.accuracy(self.target.y_pool_hidden, adopted_only=False)
        self._round["adoption_rate"] = vote.adoption_rate
        self._round["voting_alpha"] = alpha
        adopted = np.flatnonzero(vote.adopted)
        model = self.target.model_from(arrays)
        loss = finetune_pseudo(
            model,
            self.target.x_pool[adopted],
            vote.labels[adopted],
            steps=self.finetune_steps,
            weight=alpha,
            spec=self.finetune_spec,
            device=self.target.device,
            seed=self.seed * 100_003 + server_round,
        )
        self._round["finetune_loss"] = loss
        return ArrayRecord(model.state_dict())
