"""`ServerStep`: the interface between a strategy's round and a post-aggregation step."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from flwr.app import ArrayRecord


class ServerStep(Protocol):
    """What a strategy asks of a step (see `server.strategies.domain.DomainAwareMixin`)."""

    #: score the target pool with target BatchNorm statistics (AdaBN) for this step
    target_batchnorm: bool
    #: the next round's clients start from the averaged model, not from the one `apply` returns
    clients_start_averaged: bool

    def settings(self) -> dict[str, Any]:
        """The step's effective values, recorded in the run's summary (which variant produced it)."""
        ...

    def active(self, server_round: int) -> bool:
        """Whether this round runs the step (and so needs the returned models' pool outputs)."""
        ...

    def apply(
        self,
        server_round: int,
        arrays: ArrayRecord,
        client_pool_probs: np.ndarray,
        target: Any,
        record: dict[str, Any],
    ) -> ArrayRecord:
        """The weights after the step. `client_pool_probs` is (clients, pool, classes); `target` the
        server's `TargetDomain`; numbers worth logging go into `record` (the round's metrics line)."""
        ...
