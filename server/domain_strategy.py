"""Domain-aware extension shared by every fedlab strategy.

Flower's strategies aggregate; fedlab additionally needs, every round, each client's
*returned* model scored on the target domain (for Group Effect), the clients' accuracy
on their own held-out split, and one metrics line per round. This mixin wraps
`aggregate_train`/`aggregate_evaluate` of any message-API strategy to collect that,
and `round_evaluate` (passed to `Strategy.start` as `evaluate_fn`) closes the round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid

from fedlab.metrics import group_effect
from server.target import TargetDomain

RoundCallback = Callable[[dict[str, Any]], None]
EMBEDDINGS_KEY = "target-embeddings"


class DomainAwareMixin:
    """Mixin for a Flower message-API strategy (put it first in the bases)."""

    target: TargetDomain
    embeddings_per_round: int = 0  # >0: send target embeddings with each train message
    on_round: RoundCallback | None = None

    def setup_domain(self, target: TargetDomain, on_round: RoundCallback | None) -> None:
        self.target = target
        self.on_round = on_round
        self._round: dict[str, Any] = {}
        self._round_started = time.perf_counter()
        self.history: list[dict[str, Any]] = []

    # -- training ------------------------------------------------------------------
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self._round = {"round": server_round}
        self._round_started = time.perf_counter()
        messages = list(super().configure_train(server_round, arrays, config, grid))  # type: ignore[misc]
        if self.embeddings_per_round > 0 and messages:
            emb = self.target.embeddings(arrays, self.embeddings_per_round, server_round)
            record = ArrayRecord(numpy_ndarrays=[emb])
            for msg in messages:
                msg.content[EMBEDDINGS_KEY] = record
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        # Replies arrive in completion order; sort them so the floating-point sum of the
        # average (and hence every metric) is the same for the same seed.
        replies = sorted(replies, key=_reply_order)
        failed = [m for m in replies if m.has_error()]
        ok = [m for m in replies if not m.has_error()]
        self._round["clients_ok"] = len(ok)
        self._round["clients_failed"] = len(failed)
        self._round["failures"] = [str(m.error.reason)[:500] for m in failed]
        if not ok:
            reason = self._round["failures"][0] if failed else "no replies before the timeout"
            raise RuntimeError(f"round {server_round}: every client failed; first error: {reason}")
        arrays, metrics = super().aggregate_train(server_round, replies)  # type: ignore[misc]
        client_acc: dict[str, float] = {}
        client_preds: list[np.ndarray] = []
        train_stats: dict[str, dict[str, float]] = {}
        for msg in ok:
            cid = _client_name(msg.content)
            model = self.target.model_from(_only_arrays(msg.content))
            client_acc[cid] = self.target.test_accuracy(model)
            client_preds.append(self.target.pool_predictions(model))
            train_stats[cid] = {
                k: float(v) for k, v in _only_metrics(msg.content).items() if k != "client-id"
            }
        self._round["client_target_acc"] = client_acc
        self._round["client_train"] = train_stats
        if arrays is not None and client_preds:
            arrays = self.after_aggregation(server_round, arrays, np.stack(client_preds))
        return arrays, metrics

    def after_aggregation(
        self, server_round: int, arrays: ArrayRecord, client_pool_preds: np.ndarray
    ) -> ArrayRecord:
        """Hook for server-side steps after averaging (FedKA's voting). Default: none."""
        return arrays

    # -- client-side evaluation on their own held-out split --------------------------
    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        replies = list(replies)
        own = {}
        for msg in replies:
            if not msg.has_error():
                own[_client_name(msg.content)] = float(_only_metrics(msg.content)["own-accuracy"])
        self._round["client_own_acc"] = own
        return super().aggregate_evaluate(server_round, replies)  # type: ignore[misc]

    # -- closing the round (Strategy.start's evaluate_fn) ----------------------------
    def round_evaluate(self, server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model = self.target.model_from(arrays)
        acc = self.target.test_accuracy(model)
        if server_round == 0:
            self.initial_accuracy = acc
            return MetricRecord({"target-accuracy": acc})
        record = dict(self._round)
        record["target_acc"] = acc
        clients = list(record.get("client_target_acc", {}).values())
        record["mean_client_target_acc"] = float(np.mean(clients)) if clients else float("nan")
        record["group_effect"] = group_effect(acc, clients) if clients else float("nan")
        record["seconds"] = time.perf_counter() - self._round_started
        self.history.append(record)
        if self.on_round is not None:
            self.on_round(record)
        return MetricRecord({"target-accuracy": acc, "group-effect": record["group_effect"]})


def _reply_order(msg: Message) -> tuple[bool, str]:
    return (msg.has_error(), "" if msg.has_error() else _client_name(msg.content))


def _client_name(content: RecordDict) -> str:
    info = content.get("info")
    if isinstance(info, ConfigRecord) and "client" in info:
        return str(info["client"])
    return str(int(_only_metrics(content).get("client-id", -1)))


def _only_arrays(content: RecordDict) -> ArrayRecord:
    return next(iter(content.array_records.values()))


def _only_metrics(content: RecordDict) -> MetricRecord:
    return next(iter(content.metric_records.values()))
