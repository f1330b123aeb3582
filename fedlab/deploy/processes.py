"""Process supervision for a local deployment: start, stream, watch and stop every process.

Why a module of its own: a deployment's processes must all be gone afterwards, whatever
happened. Each child runs in its own session with its output prefixed, streamed, kept (a
tail, for error messages) and saved to ``logs/<name>.log``; every child gets a private marker
in its environment, inherited by the SuperExec/ServerApp/ClientApp processes Flower detaches,
so cleanup finds them by that marker even after they were re-parented. Nothing here knows
about Flower's flags: `fedlab.deploy.flower_config` builds the command lines, and
`fedlab.deploy.local` decides what runs when.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedlab.core.errors import FedlabError

TAG_VAR = "FEDLAB_DEPLOY_TAG"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOISE = re.compile(r"\[uvicorn\.access\]")  # one line per HTTP request: kept in the log file only

Sink = Callable[[str], None]


def _proc_environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def tagged_pids(tag: str) -> list[int]:
    """PIDs of live processes whose environment carries ``FEDLAB_DEPLOY_TAG=tag`` (Linux /proc)."""
    marker = f"{TAG_VAR}={tag}".encode()
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            env = _proc_environ(int(entry.name))
            if marker in env.split(b"\0") and not _is_zombie(int(entry.name)):
                found.append(int(entry.name))
    return found


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


@dataclass
class Managed:
    """One started process: its output is prefixed, streamed, kept (tail) and saved."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=60))
    reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return "\n".join(self.tail)


class Processes:
    """Starts processes in their own sessions and stops every one of them (and their children)."""

    def __init__(self, workdir: Path, env: dict[str, str], sink: Sink) -> None:
        self.workdir = workdir
        self.tag = uuid.uuid4().hex
        self.env = {**env, TAG_VAR: self.tag}
        self.sink = sink
        self.started: list[Managed] = []
        self.watchers: list[Callable[[str, str], None]] = []
        self._lock = threading.Lock()
        (workdir / "logs").mkdir(exist_ok=True)

    def start(self, name: str, argv: Sequence[str], *, quiet: bool = False) -> Managed:
        log_path = self.workdir / "logs" / f"{name}.log"
        popen = subprocess.Popen(
            list(argv),
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: Ctrl-C in the terminal is ours to handle
        )
        managed = Managed(name, popen, log_path)
        with self._lock:
            self.started.append(managed)
        managed.reader = threading.Thread(target=self._pump, args=(managed, quiet), daemon=True)
        managed.reader.start()
        return managed

    def _pump(self, managed: Managed, quiet: bool) -> None:
        assert managed.popen.stdout is not None
        with open(managed.log_path, "w", encoding="utf-8") as log_file:
            for raw in managed.popen.stdout:
                line = ANSI.sub("", raw.decode("utf-8", "replace")).rstrip()
                if not line.strip():
                    continue
                managed.tail.append(line)
                log_file.write(line + "\n")
                log_file.flush()
                if not quiet and not NOISE.search(line):
                    self.sink(f"[{managed.name}] {line}")
                for watch in list(self.watchers):
                    watch(managed.name, line)

    def run(self, name: str, argv: Sequence[str], timeout: float, *, quiet: bool = True) -> Managed:
        """Start and wait (bounded); the caller checks the return code."""
        managed = self.start(name, argv, quiet=quiet)
        try:
            managed.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_tree(managed)
            raise FedlabError(f"{name} did not finish within {timeout:.0f} s") from None
        if managed.reader is not None:
            managed.reader.join(timeout=5)
        return managed

    def kill_tree(self, managed: Managed, sig: int = signal.SIGKILL) -> None:
        """Signal a process group and every descendant (found before anything dies)."""
        victims = _descendants(managed.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(managed.pid, sig)
        for pid in victims:
            _signal(pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            managed.popen.wait(timeout=10)

    def stop_all(self, grace: float = 8.0) -> list[int]:
        """SIGTERM everything we started (groups + tagged), then SIGKILL leftovers; return survivors."""
        for managed in reversed(self.started):  # clients before the SuperLink
            if managed.alive():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(managed.pid, signal.SIGTERM)
        for pid in tagged_pids(self.tag):
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (any(m.alive() for m in self.started) or tagged_pids(self.tag)):
            time.sleep(0.2)
        for _ in range(5):  # a dying parent may still spawn: sweep until quiet
            leftovers = tagged_pids(self.tag)
            for managed in self.started:
                if managed.alive():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(managed.pid, signal.SIGKILL)
            if not leftovers and not any(m.alive() for m in self.started):
                break
            for pid in leftovers:
                _signal(pid, signal.SIGKILL)
            time.sleep(0.3)
        for managed in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                managed.popen.wait(timeout=5)
            if managed.reader is not None:
                managed.reader.join(timeout=2)
        return tagged_pids(self.tag)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


@contextlib.contextmanager
def signals_raise_interrupt() -> Iterator[None]:
    """SIGTERM/SIGHUP behave like Ctrl-C, so `finally` blocks stop our processes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM/SIGHUP while cleaning up (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def wait_port(host: str, port: int, proc: Managed, timeout: float) -> None:
    """Wait until `proc` accepts connections on host:port; fail early if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise FedlabError(f"{proc.name} exited with code {proc.popen.returncode}: {last_error(proc)}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.3)
    raise FedlabError(f"{proc.name} did not open {host}:{port} within {timeout:.0f} s")


def last_error(proc: Managed) -> str:
    """The last few error-looking lines of a process's output, for a one-line message."""
    lines = [ln for ln in proc.tail if re.search(r"ERROR|Error|error|Exit Code|refused|denied", ln)]
    picked = lines[-3:] if lines else list(proc.tail)[-3:]
    return " | ".join(ln.strip() for ln in picked) or "no output"
