"""Flower `Backend`s that run fedlab's ClientApp: in this process, or in a pool of processes.

Both implement Flower's `Backend` interface (build / num_workers / process_message / terminate),
so they serve fedlab's own runtime (`fedlab.runtime.direct.DirectGrid`, the default) and Flower's
simulation runtime alike (``engine = "flower"``, through the one patch in `fedlab.runtime.flower_compat`).

* `InProcessBackend`: the ClientApp runs in the calling thread, one message at a time: no
  cluster, no pickling, deterministic (clients never race on torch's global RNG).
* `ProcessPoolBackend`: W worker processes (forked on Linux, so they inherit the data already
  loaded; spawned elsewhere), one torch thread each. Messages and contexts are pickled to a
  worker and the reply and updated context pickled back. Speed-up vs one worker is measured in
  bench/bench_scale.py; on a machine with C cores, W ≈ C is the useful range.

``engine = "ray"`` keeps Flower's Ray backend (GPUs, fractional GPUs, several machines).
"""

from __future__ import annotations

import importlib
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.clientapp.client_app import ClientAppException, LoadClientAppError
from flwr.server.superlink.fleet.vce.backend import Backend, BackendConfig

from fedlab.runtime.flower_compat import flower_runtime_backend
from fedlab.runtime.parent_watch import ParentLink, close_parent_link, parent_link, watch_parent

CLIENT_APP_REF = "clients.app:app"


class InProcessBackend(Backend):
    """Runs ClientApps sequentially in the calling process (one worker)."""

    def __init__(self, backend_config: BackendConfig) -> None:
        super().__init__(backend_config)
        self.app_fn: Callable[[], ClientApp] | None = None

    def build(self, app_fn: Callable[[], ClientApp]) -> None:
        self.app_fn = app_fn

    @property
    def num_workers(self) -> int:
        return 1

    def is_worker_idle(self) -> bool:
        return True

    def terminate(self) -> None:
        self.app_fn = None

    def process_message(self, message: Message, context: Context) -> tuple[Message, Context]:
        if self.app_fn is None:
            raise ValueError("InProcessBackend.build() was not called")
        try:
            app = self.app_fn()
            return app(message=message, context=context), context
        except LoadClientAppError:
            raise
        except Exception as ex:  # reported to the ServerApp as an error reply, like Ray's actor does
            raise ClientAppException(str(ex)) from ex


_WORKER_APP: ClientApp | None = None


def _load_app(ref: str) -> ClientApp:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _worker_init(app_ref: str, link: ParentLink | None = None) -> None:
    """Each worker: dies with its parent, one torch thread (W workers share the cores), the ClientApp
    imported once."""
    global _WORKER_APP
    import signal

    if link is not None:
        watch_parent(link)  # a SIGKILLed parent leaves no orphan holding the run's lock
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    torch.set_num_threads(1)
    _WORKER_APP = _load_app(app_ref)


def _worker_run(message: Message, context: Context) -> tuple[Message, Context]:
    if _WORKER_APP is None:
        raise LoadClientAppError("worker has no ClientApp")
    try:
        return _WORKER_APP(message=message, context=context), context
    except Exception as ex:
        raise ClientAppException(f"{type(ex).__name__}: {ex}") from None


class ProcessPoolBackend(Backend):
    """Runs ClientApps in W worker processes (``init_args``: ``workers``, ``app_ref``)."""

    def __init__(self, backend_config: BackendConfig) -> None:
        super().__init__(backend_config)
        init: dict[str, Any] = dict(backend_config.get("init_args", {}))  # type: ignore[arg-type]
        self.workers = max(1, int(init.get("workers", 2)))
        self.app_ref = str(init.get("app_ref", CLIENT_APP_REF))
        self.pool: ProcessPoolExecutor | None = None
        self.link: ParentLink | None = None

    def build(self, app_fn: Callable[[], ClientApp]) -> None:
        # Workers import the ClientApp by reference (`app_fn` itself need not be picklable).
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self.link = parent_link(forked=method == "fork")
        self.pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context(method),
            initializer=_worker_init,
            initargs=(self.app_ref, self.link),
        )
        # fork starts every worker at the first submit: do it here, in the thread that built the
        # pool (the one PR_SET_PDEATHSIG ties the workers to)
        self.pool.submit(int).result()

    @property
    def num_workers(self) -> int:
        return self.workers

    def is_worker_idle(self) -> bool:
        return True

    def submit(self, message: Message, context: Context) -> Future:
        if self.pool is None:
            raise ValueError("ProcessPoolBackend.build() was not called")
        return self.pool.submit(_worker_run, message, context)

    def process_message(self, message: Message, context: Context) -> tuple[Message, Context]:
        return self.submit(message, context).result()

    def terminate(self) -> None:
        """Stop at once: queued messages are cancelled and the workers killed (also on Ctrl-C)."""
        pool, self.pool = self.pool, None
        link, self.link = self.link, None
        if pool is None:
            close_parent_link(link)
            return
        procs = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=2)
        close_parent_link(link)  # any worker still alive reads EOF and exits


@contextmanager
def simulation_backend(engine: str) -> Iterator[None]:
    """Make Flower's `run_simulation` use the in-process backend (``engine = "flower"``)."""
    if engine == "ray":
        yield
        return
    with flower_runtime_backend(InProcessBackend):
        yield
