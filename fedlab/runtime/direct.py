"""fedlab's simulation runtime: the ServerApp drives ClientApps through a direct in-memory Grid.

Why not Flower's runtime (`run_simulation`) by default: it routes every message through the
in-memory link state, whose dispatcher polls every node every 0.1 s and scans every stored
message for each (`InMemoryLinkState.get_message_ins` → `_check_stored_messages`): O(N²) work
per poll that competes with training for the GIL (bench/bench_scale.py measures it: see
`link_state_cost`). It also runs the ServerApp in a non-daemon thread, so Ctrl-C used to leave
the process hanging.

`DirectGrid` implements Flower's public `Grid` interface: the same ServerApp (strategies,
`Strategy.start`), the same ClientApp, the same `Message`/`RecordDict`/`Context` objects — but
`send_and_receive` hands each message straight to a Flower `Backend` (`InProcessBackend`, one at
a time; `ProcessPoolBackend`, W worker processes) and returns the replies in the
order the messages were sent. No polling; it runs on the calling thread, where Ctrl-C / SIGTERM
raise at once.
Node ids are 1..N (partition i ↔ node i+1), and each node keeps its `Context` across rounds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable

from flwr.app import Context, Message, RecordDict
from flwr.app.error import Error
from flwr.app.user_config import UserConfig
from flwr.clientapp import ClientApp
from flwr.clientapp.client_app import ClientAppException, LoadClientAppError
from flwr.common.constant import NUM_PARTITIONS_KEY, PARTITION_ID_KEY, ErrorCode
from flwr.server.superlink.fleet.vce.backend import Backend
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.run import Run

from fedlab.runtime.flower_compat import assign_message_id, set_task_identity
from fedlab.runtime.grid_view import GridView
from fedlab.runtime.interrupts import ABORT, Aborted

StatusCallback = Callable[[str, int, int], None]  # (message type, done, total)


class DirectGrid(Grid):
    """A Grid whose SuperNodes are `num_nodes` virtual clients served by one `Backend`."""

    def __init__(
        self,
        backend: Backend,
        num_nodes: int,
        run: Run,
        on_status: StatusCallback | None = None,
        run_config: dict | None = None,
    ) -> None:
        self.backend = backend
        self._run = run
        self.on_status = on_status
        self.contexts = {
            node: Context(
                run_id=run.run_id,
                node_id=node,
                node_config=UserConfig({PARTITION_ID_KEY: node - 1, NUM_PARTITIONS_KEY: num_nodes}),
                state=RecordDict(),
                run_config=UserConfig(dict(run_config or {})),
            )
            for node in range(1, num_nodes + 1)
        }
        self._replies: dict[str, Message] = {}
        self._pending: dict[str, Message] = {}

    # -- Grid interface ----------------------------------------------------------------
    def set_run(self, run: Run) -> None:
        """Grid interface: the run the ServerApp is executing (set by Flower before it starts)."""
        self._run = run

    @property
    def run(self) -> Run:
        """Grid interface: the current run."""
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        """Grid interface: a message to one virtual node (no link state: ids are assigned on push)."""
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        """Grid interface: the virtual nodes 1..N, always all connected."""
        return list(self.contexts)

    def node_partitions(self) -> dict[int, int]:
        """node id -> the partition it serves (its ``partition-id``): what the server would
        otherwise learn from every node by message (`server.sampling.discover_clients`)."""
        return {node: int(ctx.node_config[PARTITION_ID_KEY]) for node, ctx in self.contexts.items()}

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Grid interface: queue messages; they run when their replies are pulled."""
        ids = []
        for msg in messages:
            if msg.metadata.dst_node_id not in self.contexts:
                raise ValueError(f"message to unknown node {msg.metadata.dst_node_id}")
            ids.append(assign_message_id(msg))
            self._pending[ids[-1]] = msg
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Grid interface: run the queued messages now and return the replies asked for."""
        wanted = list(message_ids)
        todo = [self._pending.pop(i) for i in wanted if i in self._pending]
        if todo:
            for reply in self._dispatch(todo, None):
                self._replies[reply.metadata.reply_to_message_id] = reply
        return [self._replies.pop(i) for i in wanted if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Grid interface: run every message on the backend and return the replies in message order."""
        todo = list(messages)
        for msg in todo:
            if msg.metadata.dst_node_id not in self.contexts:
                raise ValueError(f"message to unknown node {msg.metadata.dst_node_id}")
            assign_message_id(msg)
        return self._dispatch(todo, timeout)

    # -- dispatch ----------------------------------------------------------------------
    def _dispatch(self, messages: list[Message], timeout: float | None) -> list[Message]:
        """Replies in message order; messages not started before `timeout` get no reply."""
        deadline = None if timeout is None else time.monotonic() + timeout
        total = len(messages)
        kind = messages[0].metadata.message_type if messages else ""
        submit = getattr(self.backend, "submit", None)
        replies: list[Message] = []
        if submit is not None and self.backend.num_workers > 1:
            futures = [(m, submit(m, self.contexts[m.metadata.dst_node_id])) for m in messages]
            for msg, fut in futures:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                replies.append(self._reply(msg, lambda f=fut, t=left: f.result(timeout=t)))
                self._status(kind, len(replies), total)
            return replies
        for msg in messages:
            if deadline is not None and time.monotonic() > deadline:
                break
            ctx = self.contexts[msg.metadata.dst_node_id]
            replies.append(self._reply(msg, lambda m=msg, c=ctx: self.backend.process_message(m, c)))
            self._status(kind, len(replies), total)
        return replies

    def _reply(self, msg: Message, call: Callable[[], tuple[Message, Context]]) -> Message:
        try:
            reply, ctx = call()
            self.contexts[msg.metadata.dst_node_id] = ctx
        except Exception as ex:  # an error reply, as Flower's VCE worker sends it
            code = (
                ErrorCode.CLIENT_APP_RAISED_EXCEPTION
                if isinstance(ex, ClientAppException)
                else ErrorCode.LOAD_CLIENT_APP_EXCEPTION
                if isinstance(ex, LoadClientAppError)
                else ErrorCode.UNKNOWN
            )
            reply = Message(Error(code=code, reason=f"{type(ex)}:<'{ex}'>"), reply_to=msg)
        assign_message_id(reply)
        return reply

    def _status(self, kind: str, done: int, total: int) -> None:
        if self.on_status is not None:
            self.on_status(kind, done, total)


def run_direct(
    server_app: ServerApp,
    app_fn: Callable[[], ClientApp],
    num_nodes: int,
    backend: Backend,
    on_status: StatusCallback | None = None,
    run_config: dict | None = None,
) -> DirectGrid:
    """Run `server_app` to completion against `num_nodes` virtual clients on `backend`.

    `run_config` is every node's (and the ServerApp's) ``Context.run_config``: what a deployment
    gets from ``flwr run --run-config``, given here once for the whole run."""
    run_id = random.SystemRandom().getrandbits(63)
    set_task_identity(run_id)
    run = Run.create_empty(run_id=run_id)
    backend.build(app_fn)
    grid = DirectGrid(backend, num_nodes, run, on_status, run_config)
    # The ServerApp and in-process clients run on the calling thread, which loaded the data too.
    # libgomp (torch's OpenMP) keeps one worker pool per thread that drives it, and once it
    # manages more threads than there are CPUs it cuts its spin-wait to 100 iterations, so its
    # workers sleep and are woken for every kernel: a second driving thread made the digits CNN
    # train 1.3-2.5x slower on an idle 2-core machine (bench_scale.py, `loop` vs `loop:thread`).
    # Ctrl-C / SIGTERM raise here directly; the caller removes the partial run directory.
    try:
        context = Context(run_id, 0, UserConfig(), RecordDict(), UserConfig(dict(run_config or {})))
        server_app(grid=grid, context=context)
    finally:
        backend.terminate()
    return grid


def backend_for(engine: str, workers: int, app_ref: str) -> Backend:
    """`InProcessBackend` or `ProcessPoolBackend(workers)` for fedlab's runtime."""
    from fedlab.runtime.backends import InProcessBackend, ProcessPoolBackend

    if engine == "process":
        return ProcessPoolBackend({"init_args": {"workers": workers, "app_ref": app_ref}})  # type: ignore[dict-item]
    return InProcessBackend({})


class AbortableGrid(GridView):
    """Delegates to Flower's grid; `send_and_receive` polls for replies and stops on `ABORT`."""

    def __init__(self, inner: Grid, poll: float = 0.02) -> None:
        super().__init__(inner)
        self.poll = poll

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Push, then poll for replies until all came, the timeout passed, or ABORT is set (Ctrl-C on Flower's
        runtime)."""
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
