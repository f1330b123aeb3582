"""Every use of Flower internals (non-public names) in fedlab, in one place.

Flower 1.42 has no public hook to choose a simulation backend: `vce_api.start_vce` always
imports ``raybackend.RayBackend``. fedlab's own runtime (`fedlab.runtime.direct`) needs none of that
(it drives the ServerApp through the public `Grid` interface), but it must give messages the
identity Flower's runtime gives them (`TaskIdentity`, message ids), and ``engine = "flower"``
still runs Flower's runtime with the in-process backend by swapping the RayBackend name.
`check_flower_internals()` asserts each of these still exists with the expected shape;
tests/test_sampling.py calls it, so a Flower upgrade that moves one fails loudly there
instead of silently changing what a simulation does.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

from flwr.app import Message

TESTED_FLOWER = "1.42"
_PATCH_LOCK = threading.Lock()


def set_task_identity(run_id: int) -> None:
    """What `flwr.simulation.run_simulation` sets before a run: messages read their run id from it."""
    from flwr.common.constant import SUPERLINK_NODE_ID
    from flwr.supercore.task_identity import TaskIdentity

    TaskIdentity.task_id = 1
    TaskIdentity.run_id = run_id
    TaskIdentity.node_id = SUPERLINK_NODE_ID


def assign_message_id(message: Message) -> str:
    """Give an outgoing (or reply) message its id, as Flower's grid / VCE worker do."""
    message_id = str(uuid4())
    message.metadata.__dict__["_message_id"] = message_id
    return message_id


@contextmanager
def flower_runtime_backend(backend_cls: type) -> Iterator[None]:
    """Make Flower's simulation runtime instantiate `backend_cls` instead of Ray for this block."""
    from flwr.server.superlink.fleet.vce.backend import raybackend

    with _PATCH_LOCK:
        original = raybackend.RayBackend
        raybackend.RayBackend = backend_cls  # type: ignore[misc]
        try:
            yield
        finally:
            raybackend.RayBackend = original  # type: ignore[misc]


def check_flower_internals() -> list[str]:
    """Problems with the Flower internals fedlab relies on (empty list = all as expected)."""
    import flwr
    from flwr.server.superlink.fleet.vce import vce_api
    from flwr.server.superlink.fleet.vce.backend import Backend, raybackend

    problems = []
    version = getattr(flwr, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("flwr")
    if not str(version).startswith(TESTED_FLOWER):
        problems.append(
            f"flwr {version} is not the tested {TESTED_FLOWER}.x: re-check fedlab/runtime/flower_compat.py"
        )
    if not isinstance(getattr(raybackend, "RayBackend", None), type):
        problems.append("flwr...vce.backend.raybackend.RayBackend is gone (engine='flower' patch)")
    if "from .backend.raybackend import RayBackend" not in inspect.getsource(vce_api.start_vce):
        problems.append("vce_api.start_vce no longer imports RayBackend by name (engine='flower' patch)")
    abstract = set(getattr(Backend, "__abstractmethods__", set()))
    expected = {"build", "is_worker_idle", "terminate", "process_message"}
    if abstract != expected:
        problems.append(f"Backend's abstract methods changed: {sorted(abstract)} != {sorted(expected)}")
    if not isinstance(getattr(Backend, "num_workers", None), property):
        problems.append("Backend.num_workers is no longer a property")
    try:
        from flwr.supercore.task_identity import TaskIdentity

        for name in ("task_id", "run_id", "node_id"):
            if not hasattr(type(TaskIdentity), name):
                problems.append(f"TaskIdentity.{name} is gone")
    except ImportError:
        problems.append("flwr.supercore.task_identity.TaskIdentity is gone")
    from flwr.app import metadata

    if '"_message_id"' not in inspect.getsource(metadata):
        problems.append("flwr.app.metadata.Metadata no longer stores '_message_id'")
    return problems
