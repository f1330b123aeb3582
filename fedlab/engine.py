"""Backends for Flower's simulation engine.

Flower's simulation runtime (`run_simulation`: in-memory SuperLink state, `InMemoryGrid`,
the VCE worker loop) is backend-agnostic: a `Backend` runs a `ClientApp` on a message.
Flower 1.42 ships one, Ray, and instantiates it by name inside
`flwr.server.superlink.fleet.vce.vce_api.start_vce`. Ray pays ~10 s to start a cluster
plus a Python process (torch import, data load) per actor, which dominates small
CPU simulations. `InProcessBackend` runs the very same ClientApp in the simulation's own
process, one message at a time: identical Flower messages, records and contexts, same
ServerApp, but no cluster — and deterministic, since clients never race on torch's
global RNG. `engine="ray"` keeps Ray for GPUs, fractional GPUs, or parallel clients.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.clientapp.client_app import ClientAppException, LoadClientAppError
from flwr.server.superlink.fleet.vce.backend import Backend, BackendConfig, raybackend

_PATCH_LOCK = threading.Lock()


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


@contextmanager
def simulation_backend(engine: str) -> Iterator[None]:
    """Make `run_simulation` use `engine` ("inprocess" or "ray") for the duration of the block."""
    if engine == "ray":
        yield
        return
    with _PATCH_LOCK:
        original = raybackend.RayBackend
        raybackend.RayBackend = InProcessBackend  # type: ignore[misc,assignment]
        try:
            yield
        finally:
            raybackend.RayBackend = original  # type: ignore[misc]
