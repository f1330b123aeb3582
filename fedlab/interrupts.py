"""Ctrl-C and SIGTERM: stop within seconds, exit 130 / 143, leave nothing half-written.

* SIGTERM is turned into `Terminated` (a KeyboardInterrupt) in the main thread, so both signals
  take the same path: `atomic_run_dir` removes the partial run directory, backends stop.
* Flower's own runtime (``engine = "flower"`` / ``"ray"``) runs the ServerApp in a non-daemon
  thread that waits on the grid; `AbortableGrid` makes that wait end when `ABORT` is set.
* `exit_interrupted` gives remaining non-daemon threads a moment, then ends the process
  with ``os._exit`` if one is still stuck — a hung thread must not keep the process alive.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterable

from flwr.app import Message, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run

ABORT = threading.Event()
EXIT_INTERRUPT = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt."""


class Aborted(RuntimeError):
    """Raised inside the ServerApp thread when the run was interrupted."""


def _on_sigterm(signum: int, frame: object) -> None:
    ABORT.set()
    raise Terminated()


def install_signal_handlers() -> None:
    """SIGTERM -> `Terminated` (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def exit_code(exc: BaseException) -> int:
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPT


def exit_interrupted(code: int, grace: float = 3.0) -> None:
    """Exit with `code`; if a non-daemon thread is still alive after `grace` s, exit hard."""
    ABORT.set()
    sys.stdout.flush()
    sys.stderr.flush()
    deadline = time.monotonic() + grace
    for th in threading.enumerate():
        if th is threading.main_thread() or th.daemon:
            continue
        th.join(timeout=max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() and not t.daemon and t is not threading.main_thread() for t in threading.enumerate()):
        os._exit(code)
    sys.exit(code)


class AbortableGrid(Grid):
    """Delegates to Flower's grid; `send_and_receive` polls for replies and stops on `ABORT`."""

    def __init__(self, inner: Grid, poll: float = 0.02) -> None:
        self.inner = inner
        self.poll = poll

    def set_run(self, run: Run) -> None:
        self.inner.set_run(run)

    @property
    def run(self) -> Run:
        return self.inner.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.inner.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        pending = set(self.push_messages(messages))
        end = None if timeout is None else time.monotonic() + timeout
        replies: list[Message] = []
        while pending and (end is None or time.monotonic() < end):
            if ABORT.is_set():
                raise Aborted("simulation interrupted")
            got = list(self.pull_messages(pending))
            replies += got
            pending -= {m.metadata.reply_to_message_id for m in got}
            if pending:
                time.sleep(self.poll)
        return replies
