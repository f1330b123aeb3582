"""Domain-aware extension shared by every fedlab strategy (fedlab's own, Flower's, and yours).

Flower's strategies aggregate; fedlab additionally needs, every round, each client's
*returned* model scored on the target domain (for Group Effect), the clients' accuracy
on their own held-out split, and one metrics line per round. This mixin wraps
`aggregate_train`/`aggregate_evaluate` of any message-API strategy to collect that,
and `round_evaluate` (passed to `Strategy.start` as `evaluate_fn`) closes the round.

What a strategy declares (class attributes, read by `server.strategies.registry`):
`client_mode` — the clients' local objective ("ce", "prox", "mmd", "dann"; sent to them in
every train message), `dp_modes` — the DP modes under which it keeps its guarantee, and
`settings_kwargs` — which run settings its constructor takes. A `server_step`
(`server.steps`, e.g. FedKA's voting) runs after any aggregation.

Under client DP (`fedlab.learn.privacy`) each reply carries the client's spent ε; a client whose
budget is exhausted returns the weights it received and is left out of the average (and of the
per-client target scores). Tabular federations with protected attributes also get the global
model's group fairness per round (`fedlab.metrics.fairness`): per client, pooled, and on the target.

At scale (`server.sampling`): `clients_per_round` trains a seeded sample each round (ids in the
metrics line as ``sampled_clients``); evaluation runs every `eval_every` rounds and the last;
`client_eval` says which clients score the global model on their own split ("none", the round's
"sampled" clients, or "all"). Group Effect is always over the clients that trained that round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from logging import INFO
from typing import Any, ClassVar

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common.logger import log as flwr_log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fedlab.learn.training import accuracy_of
from fedlab.metrics.confusion import confusion_from_counts, confusion_matrix_counts
from fedlab.metrics.group_effect import group_effect, group_effect_interval, hit_difference_interval
from fedlab.wire import keys
from fedlab.wire.arrays import record_numpy
from server.message_fields import client_id, client_name, only_arrays, only_metrics, reply_order, worker_of
from server.steps import ServerStep
from server.strategies.settings import StrategySettings
from server.target import TargetDomain
from server.weighted_average import WeightedAverage, consistent

RoundCallback = Callable[[dict[str, Any]], None]


class DomainAwareMixin:
    """Mixin for a Flower message-API strategy (put it first in the bases)."""

    client_mode: ClassVar[str] = "ce"
    # DP modes that keep their guarantee with this aggregation: client DP-SGD makes each update
    # private, and whatever the server computes from private updates stays private, unless it
    # also reads un-noised client numbers (q-FFL's losses). Central DP noises an AVERAGE of
    # clipped updates: only averaging aggregations keep its sensitivity (fedlab's FedAvg family).
    dp_modes: ClassVar[tuple[str, ...]] = ("client",)
    # clients report the loss of the received global model on their rows (q-FFL needs it)
    needs_initial_loss: ClassVar[bool] = False
    # the strategy brings its own server step (FedKA's voting): no second one can be added
    has_server_step: ClassVar[bool] = False
    target: TargetDomain
    embeddings_per_round: int = 0  # >0: send target embeddings with each train message
    mmd_reweight: str = "off"  # "pseudo": send the embedded rows' predicted classes too (f-DAN family)
    server_step: ServerStep | None = None  # runs after aggregation (FedKA's voting)
    on_round: RoundCallback | None = None
    # (target test groups, protected -> privileged value): fairness of the global model on the target
    fairness_target: tuple[Any, dict[str, str]] | None = None
    # sampling and evaluation cadence (`setup_sampling`); defaults = every client, every round
    clients_per_round: int = 0
    eval_every: int = 1
    client_eval: str = "sampled"
    sampling_seed: int = 0
    total_rounds: int = 1
    handshake_timeout: float = 600.0
    # node id -> client id; None: asked from the nodes when sampling first needs it
    node_clients: dict[int, int] | None = None

    @classmethod
    def settings_kwargs(cls, settings: StrategySettings) -> dict[str, Any]:
        """Constructor keywords this strategy takes from the run settings (beyond Flower's node
        minimums and the user's `strategy_options`). Override to read more; default none."""
        return {}

    @property
    def pool_target_batchnorm(self) -> bool:
        """Score the target pool with target BatchNorm statistics (the step asks for it)."""
        return self.server_step is not None and self.server_step.target_batchnorm

    def setup_sampling(
        self, clients_per_round: int, eval_every: int, client_eval: str, seed: int, rounds: int
    ) -> None:
        self.clients_per_round, self.eval_every, self.client_eval = clients_per_round, eval_every, client_eval
        self.sampling_seed, self.total_rounds = seed, rounds

    def evaluates(self, server_round: int) -> bool:
        """Whether `server_round` is an evaluation round (`server.sampling.is_eval_round`)."""
        from server.sampling import is_eval_round

        return is_eval_round(server_round, self.eval_every, self.total_rounds)

    def setup_domain(self, target: TargetDomain, on_round: RoundCallback | None) -> None:
        self.target = target
        self.on_round = on_round
        self._round: dict[str, Any] = {}
        self._client_hits: dict[str, np.ndarray] = {}
        self._round_started = time.perf_counter()
        self.history: list[dict[str, Any]] = []
        self._clients_start: ArrayRecord | None = None

    # -- training ------------------------------------------------------------------
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self._round = {"round": server_round}
        self._client_hits = {}
        self._round_started = time.perf_counter()
        self._current_arrays = arrays
        # the server step may have the clients start from the averaged model (the reference FedKA);
        # the model it returned is still the global one: scored, saved, and embedding the target
        sent = self._clients_start if self._clients_start is not None else arrays
        self._clients_start = None
        sampled = self._sample(server_round, config, grid)
        parent = super().configure_train  # type: ignore[misc]
        messages = list(self._configure_for(sampled, parent, server_round, sent, config, grid))
        self._trained_nodes = {m.metadata.dst_node_id for m in messages}
        if self.embeddings_per_round > 0 and messages:
            emb = self.target.embeddings(arrays, self.embeddings_per_round, server_round)
            sent_arrays = [emb]
            if self.mmd_reweight == "pseudo":  # class-weighted matching: the rows' predicted classes
                n = self.embeddings_per_round
                sent_arrays.append(self.target.embedded_predictions(arrays, n, server_round))
            record = ArrayRecord(numpy_ndarrays=sent_arrays)
            for msg in messages:
                msg.content[keys.EMBEDDINGS] = record
        return messages

    def _sample(self, server_round: int, config: ConfigRecord, grid: Grid) -> list[int] | None:
        """The connected nodes holding this round's seeded client sample; None: every node trains.

        Waits, as Flower's own sampling does, until `min_available_nodes` are connected."""
        if self.clients_per_round <= 0:
            return None
        from flwr.serverapp.strategy.strategy_utils import sample_nodes

        from server.sampling import discover_clients, sample_clients

        _, connected = sample_nodes(grid, self.min_available_nodes, 0)  # type: ignore[attr-defined]
        if self.clients_per_round >= max(len(connected), self.min_train_nodes):  # type: ignore[attr-defined]
            return None
        if self.node_clients is None:
            self.node_clients = discover_clients(grid, config, self.handshake_timeout)
        ids = self.node_clients.values()
        chosen = set(sample_clients(self.sampling_seed, server_round, ids, self.clients_per_round))
        self._round["sampled_clients"] = sorted(chosen)
        return [node for node in connected if self.node_clients.get(node) in chosen]

    def _configure_for(
        self,
        nodes: list[int] | None,
        configure: Callable[..., Iterable[Message]],
        server_round: int,
        arrays: ArrayRecord,
        config: ConfigRecord,
        grid: Grid,
    ) -> Iterable[Message]:
        """`configure` (the parent strategy's configure_train/evaluate) for `nodes` only (all
        when None), through a Grid view listing just them; its minimum node counts are capped at
        len(nodes) meanwhile, since the sample was drawn after those minimums were met."""
        if nodes is None:
            return configure(server_round, arrays, config, grid)
        from server.sampling import NodeSubsetGrid

        names = ("min_train_nodes", "min_evaluate_nodes", "min_available_nodes")
        saved = {name: getattr(self, name) for name in names}
        try:
            for name, value in saved.items():
                setattr(self, name, min(value, len(nodes)))
            return list(configure(server_round, arrays, config, NodeSubsetGrid(grid, nodes)))
        finally:
            for name, value in saved.items():
                setattr(self, name, value)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if self.client_eval == "none" or not self.evaluates(server_round):
            return []
        nodes = None
        if self.client_eval == "sampled":
            trained = getattr(self, "_trained_nodes", set())
            nodes = [node for node in grid.get_node_ids() if node in trained]
        parent = super().configure_evaluate  # type: ignore[misc]
        return self._configure_for(nodes, parent, server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        # Replies arrive in completion order; sort them so the floating-point sum of the
        # average (and hence every metric) is the same for the same seed.
        replies = sorted(replies, key=reply_order)
        failed = [m for m in replies if m.has_error()]
        ok = [m for m in replies if not m.has_error()]
        self._round["clients_ok"] = len(ok)
        self._round["clients_failed"] = len(failed)
        self._round["failures"] = [str(m.error.reason)[:500] for m in failed]
        if not ok:
            reason = self._round["failures"][0] if failed else "no replies before the timeout"
            raise RuntimeError(f"round {server_round}: every client failed; first error: {reason}")
        exhausted = [m for m in ok if only_metrics(m.content).get(keys.BUDGET_EXHAUSTED, 0)]
        if any(keys.EPSILON in only_metrics(m.content) for m in ok):
            self._round["client_epsilon"] = {
                client_name(m.content): float(only_metrics(m.content)[keys.EPSILON]) for m in ok
            }
            self._round["client_budget_exhausted"] = {
                client_name(m.content): bool(only_metrics(m.content).get(keys.BUDGET_EXHAUSTED, 0))
                for m in ok
            }
        if exhausted:
            out = {id(m) for m in exhausted}
            ok = [m for m in ok if id(m) not in out]
            replies = [m for m in replies if id(m) not in out]
            if not ok:  # nobody may train any more: the global model stays as it is
                self._round["client_target_acc"] = {}
                return self._current_arrays, None
        # FedAvg's own average (FedAvg, FedProx and the FedAvg-based strategies) is computed here,
        # from the same decoded arrays the target scoring below uses: one decode per reply.
        average = self._fedavg_average(ok)
        evaluates = self.evaluates(server_round)
        scores_pool = self.scores_pool(server_round)
        decoded_before: dict[int, Any] = {}
        if average is None:
            if evaluates or scores_pool:  # some aggregations consume the replies' arrays (QFedAvg)
                decoded_before = {id(m): record_numpy(only_arrays(m.content)) for m in ok}
            arrays, metrics = super().aggregate_train(server_round, replies)  # type: ignore[misc]
            arrays = self._like_global(arrays)
        client_acc: dict[str, float] = {}
        client_hits: dict[str, np.ndarray] = {}
        client_probs: list[np.ndarray] = []
        train_stats: dict[str, dict[str, float]] = {}
        self._round.setdefault("sampled_clients", sorted(client_id(m.content) for m in ok))
        for msg in ok:
            cid = client_name(msg.content)
            reported = only_metrics(msg.content)
            train_stats[cid] = {k: float(v) for k, v in reported.items()}
            if average is None and not (evaluates or scores_pool):
                continue
            decoded = decoded_before.get(id(msg)) or record_numpy(only_arrays(msg.content))
            if average is not None:
                average.add(decoded)
            if not (evaluates or scores_pool):
                continue
            model = self.target.model_from(decoded)
            if evaluates:
                client_hits[cid] = self.target.test_hits(model)
                client_acc[cid] = float(client_hits[cid].mean()) if len(client_hits[cid]) else float("nan")
            if scores_pool:
                client_probs.append(self.target.pool_probabilities(model, self.pool_target_batchnorm))
        if average is not None:
            arrays = average.record()
            metrics = self.train_metrics_aggr_fn([m.content for m in ok], self.weighted_by_key)  # type: ignore[attr-defined]
        self._round["client_target_acc"] = client_acc
        self._client_hits = client_hits  # not in the record (per-row), only for the Group Effect's interval
        self._round["client_train"] = train_stats
        workers = {client_name(m.content): worker_of(m.content) for m in ok}
        if any(workers.values()):  # engine "ray": the Ray node each client ran on
            self._round["client_worker"] = workers
        if arrays is not None and client_probs:  # only strategies that score the pool
            arrays = self.after_aggregation(server_round, arrays, np.stack(client_probs))
        return arrays, metrics

    def _like_global(self, arrays: ArrayRecord | None) -> ArrayRecord | None:
        """`arrays` with the global model's names and dtypes. Some of Flower's aggregations
        (FedMedian, FedTrimmedAvg, Bulyan) return unnamed float64 arrays; the model is loaded by
        name and its integer buffers (BatchNorm's batch counter) must stay integers."""
        current = getattr(self, "_current_arrays", None)
        if arrays is None or current is None:
            return arrays
        if list(arrays.keys()) == list(current.keys()):
            return arrays
        given = arrays.to_numpy_ndarrays()
        if len(given) != len(current):
            raise RuntimeError(f"the aggregation returned {len(given)} arrays for a model of {len(current)}")
        names = list(current.keys())
        reference = current.to_numpy_ndarrays()
        return ArrayRecord(
            {n: Array(a.astype(r.dtype, copy=False)) for n, a, r in zip(names, given, reference, strict=True)}
        )

    def _fedavg_average(self, ok: list[Message]) -> WeightedAverage | None:
        """A `WeightedAverage` over `ok` when the strategy averages as Flower's FedAvg does (its
        `aggregate_train` is FedAvg's, not overridden) and the replies pass FedAvg's checks; else
        None, and the strategy's own `aggregate_train` runs."""
        inherited = getattr(super().aggregate_train, "__func__", None)  # type: ignore[misc]
        key = getattr(self, "weighted_by_key", None)
        if inherited is not FedAvg.aggregate_train or key is None or not consistent(ok, key):
            return None
        failed = self._round["clients_failed"]
        flwr_log(INFO, "aggregate_train: Received %s results and %s failures", len(ok), failed)
        return WeightedAverage([only_metrics(m.content)[key] for m in ok])  # type: ignore[misc]

    def scores_pool(self, server_round: int) -> bool:
        """Whether this round needs the returned models' outputs on the target pool: when the
        `server_step` runs this round."""
        return self.server_step is not None and self.server_step.active(server_round)

    def after_aggregation(
        self, server_round: int, arrays: ArrayRecord, client_pool_probs: np.ndarray
    ) -> ArrayRecord:
        """The `server_step` after averaging (FedKA's voting), in the rounds where `scores_pool`
        is true. `client_pool_probs` is (clients, pool size, classes): each returned model's
        softmax outputs on the target pool."""
        if self.server_step is None:
            return arrays
        if self.server_step.clients_start_averaged:
            self._clients_start = arrays
        return self.server_step.apply(server_round, arrays, client_pool_probs, self.target, self._round)

    # -- client-side evaluation on their own held-out split --------------------------
    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        replies = list(replies)
        own = {}
        fairness: dict[str, Any] = {}
        counts: list[Any] = []
        confusion: dict[str, list[list[int]]] = {}
        protected: dict[str, str] = {}
        for msg in replies:
            if not msg.has_error():
                own[client_name(msg.content)] = float(only_metrics(msg.content)[keys.OWN_ACCURACY])
                fair = msg.content.get(keys.FAIRNESS)
                if isinstance(fair, ConfigRecord) and keys.FAIRNESS_JSON in fair:
                    from fedlab.metrics.fairness import read_payload

                    payload = read_payload(str(fair[keys.FAIRNESS_JSON]))
                    fairness[client_name(msg.content)] = payload["metrics"]
                    counts += payload["counts"]
                    confusion[client_name(msg.content)] = confusion_from_counts(payload["counts"])
                    protected = payload["protected"]
        if replies:
            self._round["client_own_acc"] = own
        if fairness:
            from fedlab.metrics.fairness import pooled_fairness

            self._round["client_fairness"] = fairness
            self._round["client_confusion"] = confusion
            self._round["pooled_fairness"] = pooled_fairness(counts, protected)
        return super().aggregate_evaluate(server_round, replies)  # type: ignore[misc]

    # -- closing the round (Strategy.start's evaluate_fn) ----------------------------
    def round_evaluate(self, server_round: int, arrays: ArrayRecord) -> MetricRecord:
        record = dict(self._round)
        if server_round > 0 and not self.evaluates(server_round):
            # training-only round: no target scores (see `server.sampling`)
            record.pop("client_target_acc", None)
            record["evaluated"] = False
            record["seconds"] = time.perf_counter() - self._round_started
            self.history.append(record)
            if self.on_round is not None:
                self.on_round(record)
            return MetricRecord({})
        model = self.target.model_from(arrays)
        y_pred = self.target.test_predictions(model)
        acc = accuracy_of(y_pred, self.target.y_test)
        if server_round == 0:
            self.initial_accuracy = acc
            return MetricRecord({"target-accuracy": acc})
        record["evaluated"] = True
        record["target_acc"] = acc
        clients = list(record.get("client_target_acc", {}).values())
        record["mean_client_target_acc"] = float(np.mean(clients)) if clients else float("nan")
        record["group_effect"] = group_effect(acc, clients) if clients else float("nan")
        hits = [self._client_hits[c] for c in record.get("client_target_acc", {}) if c in self._client_hits]
        if clients and len(hits) == len(clients) and len(y_pred) > 1:
            global_hits = y_pred == self.target.y_test
            record["group_effect_ci"] = list(group_effect_interval(global_hits, hits))
            # each client's own model minus the global model, paired over the same rows: whether a
            # client "beat the global model" beyond what a few test rows decide
            record["client_vs_global_ci"] = {
                c: list(hit_difference_interval(self._client_hits[c], global_hits))
                for c in record["client_target_acc"]
            }
        if self.fairness_target is not None:
            from fedlab.metrics.fairness import fairness_by_attribute

            groups, protected = self.fairness_target
            record["target_fairness"] = fairness_by_attribute(self.target.y_test, y_pred, groups, protected)
            record["target_confusion"] = confusion_matrix_counts(self.target.y_test, y_pred)
        record["seconds"] = time.perf_counter() - self._round_started
        self.history.append(record)
        if self.on_round is not None:
            self.on_round(record)
        return MetricRecord({"target-accuracy": acc, "group-effect": record["group_effect"]})
