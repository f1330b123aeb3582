"""Domain-aware extension shared by every fedlab strategy.

Flower's strategies aggregate; fedlab additionally needs, every round, each client's
*returned* model scored on the target domain (for Group Effect), the clients' accuracy
on their own held-out split, and one metrics line per round. This mixin wraps
`aggregate_train`/`aggregate_evaluate` of any message-API strategy to collect that,
and `round_evaluate` (passed to `Strategy.start` as `evaluate_fn`) closes the round.

Under client DP (`fedlab.privacy`) each reply carries the client's spent ε; a client whose
budget is exhausted returns the weights it received and is left out of the average (and of the
per-client target scores). Tabular federations with protected attributes also get the global
model's group fairness per round (`fedlab.fairness_eval`): per client, pooled, and on the target.
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
FAIRNESS_KEY = "fairness"


class DomainAwareMixin:
    """Mixin for a Flower message-API strategy (put it first in the bases)."""

    target: TargetDomain
    embeddings_per_round: int = 0  # >0: send target embeddings with each train message
    pool_target_batchnorm: bool = False  # score the target pool with target BatchNorm statistics
    on_round: RoundCallback | None = None
    # (target test groups, protected -> privileged value): fairness of the global model on the target
    fairness_target: tuple[Any, dict[str, str]] | None = None

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
        self._current_arrays = arrays
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
        exhausted = [m for m in ok if _only_metrics(m.content).get("budget-exhausted", 0)]
        if any("epsilon" in _only_metrics(m.content) for m in ok):
            self._round["client_epsilon"] = {
                _client_name(m.content): float(_only_metrics(m.content)["epsilon"]) for m in ok
            }
            self._round["client_budget_exhausted"] = {
                _client_name(m.content): bool(_only_metrics(m.content).get("budget-exhausted", 0)) for m in ok
            }
        if exhausted:
            out = {id(m) for m in exhausted}
            ok = [m for m in ok if id(m) not in out]
            replies = [m for m in replies if id(m) not in out]
            if not ok:  # nobody may train any more: the global model stays as it is
                self._round["client_target_acc"] = {}
                return self._current_arrays, None
        arrays, metrics = super().aggregate_train(server_round, replies)  # type: ignore[misc]
        client_acc: dict[str, float] = {}
        client_probs: list[np.ndarray] = []
        train_stats: dict[str, dict[str, float]] = {}
        for msg in ok:
            cid = _client_name(msg.content)
            model = self.target.model_from(_only_arrays(msg.content))
            client_acc[cid] = self.target.test_accuracy(model)
            if self.scores_pool(server_round):
                client_probs.append(self.target.pool_probabilities(model, self.pool_target_batchnorm))
            train_stats[cid] = {
                k: float(v) for k, v in _only_metrics(msg.content).items() if k != "client-id"
            }
        self._round["client_target_acc"] = client_acc
        self._round["client_train"] = train_stats
        if arrays is not None and client_probs:  # only strategies that score the pool
            arrays = self.after_aggregation(server_round, arrays, np.stack(client_probs))
        return arrays, metrics

    def scores_pool(self, server_round: int) -> bool:
        """Whether this round needs the returned models' outputs on the target pool. Default: no."""
        return False

    def after_aggregation(
        self, server_round: int, arrays: ArrayRecord, client_pool_probs: np.ndarray
    ) -> ArrayRecord:
        """Hook for server-side steps after averaging (FedKA's voting), called in the rounds
        where `scores_pool` is true. Default: none.

        `client_pool_probs` is (clients, pool size, classes): each returned model's softmax
        outputs on the target pool."""
        return arrays

    # -- client-side evaluation on their own held-out split --------------------------
    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        replies = list(replies)
        own = {}
        fairness: dict[str, Any] = {}
        counts: list[Any] = []
        protected: dict[str, str] = {}
        for msg in replies:
            if not msg.has_error():
                own[_client_name(msg.content)] = float(_only_metrics(msg.content)["own-accuracy"])
                fair = msg.content.get(FAIRNESS_KEY)
                if isinstance(fair, ConfigRecord) and "json" in fair:
                    from fedlab.fairness_eval import read_payload

                    payload = read_payload(str(fair["json"]))
                    fairness[_client_name(msg.content)] = payload["metrics"]
                    counts += payload["counts"]
                    protected = payload["protected"]
        self._round["client_own_acc"] = own
        if fairness:
            from fedlab.fairness_eval import pooled_fairness

            self._round["client_fairness"] = fairness
            self._round["pooled_fairness"] = pooled_fairness(counts, protected)
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
        if self.fairness_target is not None:
            from fedlab.fairness_eval import fairness_by_attribute
            from fedlab.training import predict

            groups, protected = self.fairness_target
            y_pred = predict(model, self.target.x_test, self.target.device)
            record["target_fairness"] = fairness_by_attribute(self.target.y_test, y_pred, groups, protected)
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
