"""Per-round client sampling and evaluation cadence (cross-device scale).

Why seeded sampling needs a handshake: the Grid addresses SuperNodes by node id, and node ids
are random per run (Flower draws them), so sampling node ids would not repeat across runs. The
server therefore asks every node once which client (partition) it holds — a tiny ``query``
message — and samples *client ids* with ``rng([seed, round, 0x5A4D])``: the same seed gives
the same clients in every round on every engine. fedlab's own runtime (`fedlab.runtime.direct`) knows
which partition each node serves, so there the server reads the mapping instead of asking
(`server.app.run_federation`); the answer is the same. Without sampling (``clients_per_round`` 0 or
≥ N) no handshake is sent and every client trains every round, exactly as before.

Only the sampled nodes get a message: the strategy configures the round through
`NodeSubsetGrid`, a view of the Grid that lists just those nodes, so Flower's
`configure_train`/`configure_evaluate` (and any strategy's override) build k messages, not N.
At 1,000 clients and 10 per round, building a message for every node and dropping the rest
cost more per round than the 10 updates (bench/bench_scale.py).

Evaluation rounds are every ``eval_every``-th round and always the last one. Outside them the
server neither scores the returned models on the target (Group Effect) nor asks clients to
evaluate, so a round costs what training costs.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from fedlab.runtime.grid_view import GridView

SAMPLING_STREAM = 0x5A4D


def is_eval_round(server_round: int, eval_every: int, num_rounds: int) -> bool:
    """Whether a round evaluates: every `eval_every`-th round and always the last."""
    return server_round % max(1, eval_every) == 0 or server_round >= num_rounds


def sample_clients(seed: int, server_round: int, client_ids: Iterable[int], k: int) -> list[int]:
    """`k` distinct client ids (sorted), drawn from `client_ids` by a (seed, round) generator."""
    ids = sorted(client_ids)
    if k <= 0 or k >= len(ids):
        return ids
    rng = np.random.default_rng([seed % (2**32), server_round, SAMPLING_STREAM])
    return sorted(int(ids[i]) for i in rng.choice(len(ids), size=k, replace=False))


def discover_clients(grid: Grid, config: ConfigRecord, timeout: float) -> dict[int, int]:
    """node id -> client id, asked once from every connected node (see module docstring)."""
    nodes = sorted(grid.get_node_ids())
    messages = [
        Message(RecordDict({"config": config}), dst_node_id=node, message_type=MessageType.QUERY)
        for node in nodes
    ]
    mapping: dict[int, int] = {}
    for reply in grid.send_and_receive(messages, timeout=timeout):
        if reply.has_error():
            continue
        info = reply.content.get("info")
        if isinstance(info, ConfigRecord) and "client-id" in info:
            mapping[int(reply.metadata.src_node_id)] = int(info["client-id"])
    if not mapping:
        raise RuntimeError("client sampling: no node answered the client-id handshake")
    seen: dict[int, int] = {}
    for node, cid in mapping.items():
        if cid in seen:
            raise RuntimeError(f"client sampling: nodes {seen[cid]} and {node} both hold client {cid}")
        seen[cid] = node
    return mapping


class NodeSubsetGrid(GridView):
    """`inner` with `get_node_ids` narrowed to `nodes`: what a strategy sees when it should
    configure only this round's sample. Everything else goes to `inner`."""

    def __init__(self, inner: Grid, nodes: Iterable[int]) -> None:
        super().__init__(inner)
        self.nodes = list(nodes)

    def get_node_ids(self) -> Iterable[int]:
        """Only the round's sampled nodes: what the parent strategy configures."""
        return list(self.nodes)
