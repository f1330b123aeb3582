"""`GridView`: a Flower `Grid` that hands every call to another Grid.

Why: fedlab wraps the Grid a strategy talks to in two places, each changing one thing:
`fedlab.runtime.direct.AbortableGrid` (replies polled so Ctrl-C can stop the wait) and
`server.sampling.NodeSubsetGrid` (only this round's sampled nodes are listed). Subclass and
override the one method that differs.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import Message, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run


class GridView(Grid):
    """Every `Grid` method delegated to `inner`."""

    def __init__(self, inner: Grid) -> None:
        self.inner = inner

    def set_run(self, run: Run) -> None:
        """Delegated to the wrapped Grid."""
        self.inner.set_run(run)

    @property
    def run(self) -> Run:
        """Delegated to the wrapped Grid."""
        return self.inner.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        """Delegated to the wrapped Grid."""
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        """Delegated to the wrapped Grid (a subclass may list fewer nodes)."""
        return self.inner.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Delegated to the wrapped Grid."""
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Delegated to the wrapped Grid."""
        return self.inner.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Delegated to the wrapped Grid."""
        return self.inner.send_and_receive(messages, timeout=timeout)
