"""What a strategy's constructor may read (`StrategySettings`), apart from the strategies.

Why its own file: every strategy file and the registry take it, and the domain-aware base does
not own it — a strategy that needs no per-round bookkeeping still reads its settings here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fedlab.config import TrainingConfig


@dataclass(frozen=True)
class StrategySettings:
    """What a strategy's constructor may read: the training section, the run seed, the number of
    clients, and the user's `strategy_options` (constructor keywords, e.g. FedAdam's ``eta``)."""

    training: TrainingConfig
    seed: int
    num_clients: int
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def min_train(self) -> int:
        """Clients that must train for a round to count (`min_fit_clients_fraction` of them)."""
        return max(1, round(self.num_clients * self.training.min_fit_clients_fraction))

    def node_minimums(self) -> dict[str, Any]:
        """Flower's sampling keywords: every node trains and evaluates, `min_train` must be there."""
        n = self.min_train
        return {
            "fraction_train": 1.0,
            "fraction_evaluate": 1.0,
            "min_train_nodes": n,
            "min_evaluate_nodes": n,
            "min_available_nodes": n,
        }
