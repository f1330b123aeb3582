"""Flower's built-in Message-API strategies, runnable on every fedlab federation by short name.

Each is Flower's own class with fedlab's `DomainAwareMixin` in front (target accuracy,
per-client accuracy, Group Effect, fairness every round); nothing of the aggregation is
re-implemented. Their constructor keywords come from ``[training.strategy_options]`` (e.g.
``eta = 0.01`` for FedAdam, ``num_malicious_nodes = 1`` for Krum); the settings fedlab already
has are passed for them (q-FFL's client learning rate is `training.lr`).

DP: every one keeps client DP-SGD's guarantee (the server post-processes private updates),
except q-FFL, whose aggregation weights use each client's un-noised loss. None is offered under
central DP, whose noise is calibrated for an average of clipped updates.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord
from flwr.serverapp import strategy as fl

from fedlab.wire import keys
from server.strategies.domain import DomainAwareMixin, StrategySettings


class _FloatQFedAvg(fl.QFedAvg):
    """Flower's QFedAvg on float weights: its update scales every array in place, which fails on
    integer buffers (BatchNorm's batch counter). Those are aggregated as floats and then keep
    the global model's value, which is what FedAvg's average of identical counters gives too."""

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        current = self.current_arrays
        if current is None:
            return super().aggregate_train(server_round, replies)
        integer = [n for n, a in current.items() if not np.issubdtype(a.numpy().dtype, np.floating)]
        for msg in replies:
            if not msg.has_error():
                record = msg.content[keys.ARRAYS]
                for name in integer:
                    record[name] = Array(record[name].numpy().astype(np.float64))
        self.current_arrays = ArrayRecord(
            {n: Array(a.numpy().astype(np.float64)) if n in integer else a for n, a in current.items()}
        )
        try:
            arrays, metrics = super().aggregate_train(server_round, replies)
        finally:
            self.current_arrays = current
        if arrays is not None:
            arrays = ArrayRecord({n: current[n] if n in integer else a for n, a in arrays.items()})
        return arrays, metrics


class DomainQFedAvg(DomainAwareMixin, _FloatQFedAvg):
    """q-FFL (Li et al. 2020, q-FedAvg): updates of clients with a higher loss weigh more (``q``).

    Its Lipschitz estimate is 1 / the clients' learning rate (`training.lr`, plain SGD assumed)
    and its loss is the received global model's on the client's training rows, which the clients
    report when the strategy asks (`needs_initial_loss`)."""

    dp_modes = ()
    needs_initial_loss = True

    @classmethod
    def settings_kwargs(cls, settings: StrategySettings) -> dict[str, Any]:
        """q-FFL's Lipschitz estimate from the clients' learning rate; its loss key is the clients' initial-
        loss."""
        return {"client_learning_rate": settings.training.lr, "train_loss_key": keys.INITIAL_LOSS}


def _domain(cls: type) -> type:
    return type(f"Domain{cls.__name__}", (DomainAwareMixin, cls), {"__module__": __name__})


FLOWER_STRATEGIES: dict[str, type] = {
    "fedadam": _domain(fl.FedAdam),
    "fedyogi": _domain(fl.FedYogi),
    "fedadagrad": _domain(fl.FedAdagrad),
    "fedavgm": _domain(fl.FedAvgM),
    "fedmedian": _domain(fl.FedMedian),
    "fedtrimmedavg": _domain(fl.FedTrimmedAvg),
    "krum": _domain(fl.Krum),
    "multikrum": _domain(fl.MultiKrum),
    "bulyan": _domain(fl.Bulyan),
    "qfedavg": DomainQFedAvg,
}
