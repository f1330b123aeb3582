"""Per-round reply bookkeeping for a deployed ServerApp: who was asked, who answered.

Why: in a deployment a SuperNode can die or stall mid-run, and Flower's strategies simply
aggregate the replies that arrive (fedlab's do so on purpose, see `server.app.main`). The
run then finishes "completed" with the loss visible only in a log line. `ReplyTracker`
wraps the Grid that `Strategy.start` talks to and records, for every
``send_and_receive`` (one train and one evaluate exchange per round), the SuperNodes of
the federation, the messages sent, the good replies, the error replies (with Flower's
reason), the nodes that sent nothing back, and of the nodes that got no message those the
SuperLink no longer lists (offline, lost) apart from those the strategy did not sample.
It logs one line per exchange through Flower's logger (so it reaches the ``flwr run --stream``
output) and keeps the records for ``summary.json`` (``deployment.replies``), which
``fedlab.deploy.rounds`` turns into the per-round report and the ``--require-all-nodes`` verdict.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flwr.app import Message
from flwr.common.logger import log as flwr_log

from server.message_fields import client_name

REASON_CHARS = 300


def lost_nodes(rec: Mapping[str, Any]) -> dict[int, str]:
    """Node id -> why it gave no usable reply in one recorded exchange (empty: all replied)."""
    out: dict[int, str] = {}
    for node, reason in rec.get("failed", {}).items():
        out[int(node)] = f"replied with an error ({reason})"
    for node in rec.get("no_reply", []):
        timeout = rec.get("timeout_s")
        out[int(node)] = f"no reply within {timeout:.0f} s" if timeout else "no reply"
    for node in rec.get("not_sent", []):
        out[int(node)] = "not asked (offline: the SuperLink no longer lists it)"
    return dict(sorted(out.items()))


class ReplyTracker:
    """A Grid proxy: forwards everything, records each ``send_and_receive``."""

    def __init__(self, grid: Any, nodes: Sequence[int]) -> None:
        self._grid = grid
        self.nodes = sorted(int(n) for n in nodes)  # the federation: SuperNodes at the start
        self.records: list[dict[str, Any]] = []
        self.names: dict[int, str] = {}  # node id -> client name ("1:original"), once it replied
        self._round = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> list[Message]:
        messages = list(messages)
        phase = messages[0].metadata.message_type if messages else "none"
        stated = _server_round(messages)
        if stated is not None:
            self._round = stated
        elif phase.startswith("train") or not self._round:
            self._round += 1  # messages that do not say (the sampling handshake: round 1's)
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        self.records.append(self._record(phase, messages, replies, timeout))
        self._log(self.records[-1])
        return replies

    def _record(
        self, phase: str, messages: list[Message], replies: list[Message], timeout: float | None
    ) -> dict[str, Any]:
        sent = [int(m.metadata.dst_node_id) for m in messages]
        # The grid stamps each pushed message with its id; a reply names the message it answers.
        # Match on that: an error the SuperLink writes for an offline node comes from the
        # SuperLink's own node id, not from the node that failed.
        asked = {
            m.metadata.message_id: int(m.metadata.dst_node_id) for m in messages if m.metadata.message_id
        }
        ok: list[int] = []
        failed: dict[str, str] = {}
        for reply in replies:
            node = asked.get(reply.metadata.reply_to_message_id, int(reply.metadata.src_node_id))
            if reply.has_error():
                failed[str(node)] = str(reply.error.reason)[:REASON_CHARS]
            else:
                ok.append(node)
                if "info" in reply.content or reply.content.metric_records:  # fedlab's ClientApp
                    self.names[node] = client_name(reply.content)
        answered = set(ok) | {int(n) for n in failed}
        # A node of the federation that got no message is offline if the SuperLink no longer
        # lists it; if it is still listed, the strategy left it out (clients_per_round sampling).
        listed = {int(n) for n in self._grid.get_node_ids()}
        unsent = set(self.nodes) - set(sent)
        offline = sorted(unsent - listed)
        return {
            "round": self._round,
            "phase": phase,
            "expected": len(sent) + len(offline),
            "received": len(ok),
            "nodes": list(self.nodes),
            "sent": sorted(sent),
            "ok": sorted(ok),
            "failed": failed,
            "no_reply": sorted(set(sent) - answered),
            "not_sent": offline,
            "not_sampled": sorted(unsent & listed),
            "timeout_s": timeout,
            "names": {str(k): v for k, v in sorted(self.names.items())},
        }

    @staticmethod
    def _log(rec: dict[str, Any]) -> None:
        lost = lost_nodes(rec)
        text = f"replies round {rec['round']} {rec['phase']}: {rec['received']} of {rec['expected']}"
        if not lost:
            flwr_log(logging.INFO, "%s", text)
            return
        names = rec["names"]
        details = "; ".join(f"node {n}{_label(names, n)} {why}" for n, why in lost.items())
        flwr_log(logging.WARNING, "%s; lost: %s", text, details)


def _server_round(messages: Sequence[Message]) -> int | None:
    """The round Flower's strategies write into each train/evaluate config (``server-round``)."""
    if not messages:
        return None
    config = messages[0].content.config_records.get("config")
    value = config.get("server-round") if config is not None else None
    return int(value) if value is not None else None


def _label(names: dict[str, str], node: int) -> str:
    name = names.get(str(node))
    return f" ({name})" if name else ""
