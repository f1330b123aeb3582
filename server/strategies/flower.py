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
from server.strategies.domain import DomainAwareMixin
from server.strategies.settings import StrategySettings

BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


class BufferAwareQFedAvg(fl.QFedAvg):
    """Flower's QFedAvg with its q-FFL step applied to the TRAINED weights only.

    Flower's q-FFL treats every array of the model as a gradient step: with BatchNorm it would
    scale the running statistics (and the integer batch counter) by 1/h and fold them into the
    update norm, although no client trained them with gradients. Here each reply's buffers are
    taken out before Flower's aggregation runs on the parameters, and put back as their average
    weighted by the clients' examples (what FedAvg does with them)."""

    def trained_names(self, current: ArrayRecord) -> set[str]:
        """Names of the model's parameters (the rest of the record are buffers)."""
        target = getattr(self, "target", None)
        factory = getattr(target, "model_factory", None)
        if factory is not None:
            return {name for name, _ in factory().named_parameters()}  # type: ignore[operator]
        return {n for n in current if not n.endswith(BUFFER_SUFFIXES)}

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        current = self.current_arrays
        if current is None:
            return super().aggregate_train(server_round, replies)
        trained = self.trained_names(current)
        buffers = [n for n in current if n not in trained]
        if not buffers:
            return super().aggregate_train(server_round, replies)
        taken: list[tuple[float, dict[str, np.ndarray]]] = []
        for msg in replies:
            if msg.has_error():
                continue
            record = msg.content[keys.ARRAYS]
            metrics = next(iter(msg.content.metric_records.values()), {})
            weight = float(metrics.get(self.weighted_by_key, 1.0))
            taken.append((weight, {n: record[n].numpy() for n in buffers}))
            for name in buffers:
                del record[name]
        self.current_arrays = ArrayRecord({n: a for n, a in current.items() if n in trained})
        try:
            arrays, metrics_out = super().aggregate_train(server_round, replies)
        finally:
            self.current_arrays = current
        if arrays is None or not taken:
            return arrays, metrics_out
        weights = [w for w, _ in taken]
        if sum(weights) <= 0:
            weights = [1.0] * len(taken)
        merged: dict[str, Array] = {}
        for name, array in current.items():
            if name in trained:
                merged[name] = arrays[name]
                continue
            dtype = array.numpy().dtype
            mean = sum(w * b[name].astype(np.float64) for w, (_, b) in zip(weights, taken, strict=True))
            mean = mean / sum(weights)
            value = np.rint(mean) if not np.issubdtype(dtype, np.floating) else mean
            merged[name] = Array(np.asarray(value).astype(dtype))
        return ArrayRecord(merged), metrics_out


class DomainQFedAvg(DomainAwareMixin, BufferAwareQFedAvg):
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
