"""Ctrl-C and SIGTERM: stop within seconds, exit 130 / 143, leave nothing half-written.

* SIGTERM is turned into `Terminated` (a KeyboardInterrupt) in the main thread, so both signals
  take the same path: `atomic_run_dir` removes the partial run directory, backends stop.
* Flower's own runtime (``engine = "flower"`` / ``"ray"``) runs the ServerApp in a non-daemon
  thread that waits on the grid; `fedlab.runtime.direct.AbortableGrid` ends that wait when `ABORT` is set.
* `exit_interrupted` gives remaining non-daemon threads a moment to finish, then ends the
  process with ``os._exit`` — a hung thread must not keep the process alive.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

ABORT = threading.Event()
EXIT_INTERRUPT = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt."""


class Aborted(RuntimeError):
    """Raised inside the ServerApp thread when the run was interrupted."""


TERMINATED = threading.Event()  # SIGTERM was received (click may swallow the exception itself)


def _on_sigterm(signum: int, frame: object) -> None:
    ABORT.set()
    TERMINATED.set()
    raise Terminated()


def install_signal_handlers() -> None:
    """SIGTERM -> `Terminated` (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def exit_code(exc: BaseException | None = None) -> int:
    """The shell's exit status for a signal: 128 + its number (Ctrl-C 130, SIGTERM 143)."""
    return EXIT_TERMINATED if isinstance(exc, Terminated) or TERMINATED.is_set() else EXIT_INTERRUPT


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
    # The run directory is already cleaned up and backends stopped; skip the interpreter's
    # slow teardown (torch, pandas) and any thread that did not stop: exit now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
