"""The server's view of the unlabeled target domain (leave-one-domain-out).

The server keeps the target domain's *pool* (inputs whose labels are held back and used
only to score voting) and a *test* split that voting and fine-tuning never see. It
turns global weights into the embeddings FedKA sends to clients, scores any model on
the target test split in eval mode, and collects clients' votes on the pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from flwr.app import ArrayRecord

from fedlab.core.seeding import seed_torch
from fedlab.learn.models import DomainModel
from fedlab.learn.training import adapt_batchnorm, embed, predict, predict_logits
from fedlab.wire.arrays import load_weights, record_state, torch_state


@dataclass
class TargetDomain:
    """The server's view of the held-out target domain: an unlabeled pool it may use, a test split it only
    scores on."""
    name: str
    x_pool: np.ndarray
    y_pool_hidden: np.ndarray  # never used for training: only to report voting accuracy
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    model_factory: object  # () -> DomainModel
    device: torch.device
    seed: int
    _scratch: DomainModel | None = field(default=None, init=False, repr=False)

    def model_from(self, arrays: ArrayRecord | Mapping[str, np.ndarray]) -> DomainModel:
        """`arrays` (a record, or its arrays already decoded by `fedlab.wire.arrays.record_numpy`)
        loaded into the server's one scratch model: every parameter and buffer is overwritten,
        so it is reused instead of built and initialised per returned model (at 100s of clients
        a round that was a measurable share of it). The model is valid until the next call —
        every caller uses it and drops it before asking for another."""
        if self._scratch is None:
            self._scratch = self.model_factory().to(self.device)  # type: ignore[operator]
        model = self._scratch
        load_weights(model, record_state(arrays) if isinstance(arrays, ArrayRecord) else torch_state(arrays))
        for param in model.parameters():
            param.grad = None
        return model

    def embeddings(self, arrays: ArrayRecord, n: int, server_round: int) -> np.ndarray:
        """Embeddings of a seeded sample of the target pool (never raw inputs).

        Computed in training mode (BatchNorm on the sample's own statistics, dropout on), like
        the clients' source features, so the MMD compares like with like (see `embed`). Dropout
        draws from torch's global generator, which the clients' training leaves in a state that
        depends on which client ran last (order, engine): it is seeded here from (seed, round)."""
        seed_torch(int(np.random.SeedSequence([self.seed, server_round, 7]).generate_state(1)[0]))
        idx = self._embedded_rows(n, server_round)
        return embed(
            self.model_from(arrays),
            self.x_pool[idx],
            self.device,
            batch=len(idx),
            train_mode=True,
        )

    def embedded_predictions(self, arrays: ArrayRecord, n: int, server_round: int) -> np.ndarray:
        """The model's predicted class of each row `embeddings` sends (same rows, same order), with
        BatchNorm statistics of the pool (AdaBN, as the voters predict): what class-weighted matching
        (`training.mmd_reweight`) weights the target rows by. No label is read."""
        model = adapt_batchnorm(self.model_from(arrays), self.x_pool, self.device)
        return predict(model, self.x_pool[self._embedded_rows(n, server_round)], self.device)

    def _embedded_rows(self, n: int, server_round: int) -> np.ndarray:
        """The seeded, sorted pool rows embedded in `server_round`."""
        rng = np.random.default_rng([self.seed, server_round, 7])
        return np.sort(rng.choice(len(self.x_pool), size=min(n, len(self.x_pool)), replace=False))

    def test_hits(self, model: DomainModel) -> np.ndarray:
        """Per target test row, whether `model` (eval mode) classifies it right: a client's accuracy
        is their mean, and the rows pair the clients with the global model in the Group Effect's
        interval (`fedlab.metrics.group_effect.group_effect_interval`)."""
        return self.test_predictions(model) == self.y_test

    def test_predictions(self, model: DomainModel) -> np.ndarray:
        """Predicted classes on the target test split (accuracy and fairness from one pass)."""
        return predict(model, self.x_test, self.device)

    def pool_probabilities(self, model: DomainModel, target_batchnorm: bool = False) -> np.ndarray:
        """(N, C) softmax outputs on the pool, eval mode: a client's vote and its confidence.

        With `target_batchnorm` the model first gets BatchNorm statistics of the pool (AdaBN,
        see `adapt_batchnorm`), as the global model has after fine-tuning on the target."""
        if target_batchnorm:
            model = adapt_batchnorm(model, self.x_pool, self.device)
        logits = torch.as_tensor(predict_logits(model, self.x_pool, self.device))
        return torch.softmax(logits, dim=1).numpy()
