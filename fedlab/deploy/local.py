"""`fedlab deploy local`: a real Flower deployment (SuperLink + N SuperNodes) on 127.0.0.1.

Why processes and not the simulation engine: deployment exercises what simulation
cannot — TLS, SuperNode authentication, the FAB shipped by ``flwr run``, clients that
load their own data from ``--node-config``, and nodes that die. This module starts
exactly the processes an operator would (``flower-superlink``, ``flower-supernode``, the
``flwr`` CLI; SuperExec is spawned by them in ``subprocess`` isolation), each in its own
session with its output prefixed and streamed, and guarantees they are all gone
afterwards: every child gets a private marker in its environment, inherited by the
SuperExec/ServerApp/ClientApp processes Flower detaches, so cleanup finds them by that
marker even after they were re-parented. Cleanup runs in ``finally``, on Ctrl-C and on
SIGTERM/SIGHUP.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedlab.deploy.certs import CertPaths, NodeKeys, ensure_private_dir, generate_certs, generate_node_keys
from fedlab.errors import FedlabError

HOST = "127.0.0.1"
CONNECTION = "fedlab-local"
TAG_VAR = "FEDLAB_DEPLOY_TAG"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOISE = re.compile(r"\[uvicorn\.access\]")  # one line per HTTP request: kept in the log file only
FLWR_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "PYTHONUNBUFFERED": "1",
}
# Flower's CLI from this interpreter's environment (the `flwr` script next to sys.executable).
FLWR_CLI = [str(Path(sys.executable).with_name("flwr"))]

Sink = Callable[[str], None]


# -- processes ---------------------------------------------------------------------


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
def _signals_raise_interrupt() -> Iterator[None]:
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
def _interrupts_deferred() -> Iterator[None]:
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


# -- network -----------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all held open while choosing, then released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def check_tls(
    host: str, port: int, ca_file: Path, server_name: str = "localhost", timeout: float = 5.0
) -> None:
    """Verify the SuperLink's certificate with `ca_file`, as a SuperNode would; one-line error."""
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_name),
        ):
            return
    except ssl.SSLCertVerificationError as exc:
        raise FedlabError(
            f"TLS check of the SuperLink at {host}:{port} failed: its certificate is not trusted by "
            f"{ca_file} ({exc.verify_message}); use the ca.crt from the same `fedlab deploy certs` run"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise FedlabError(f"TLS check of the SuperLink at {host}:{port} failed: {exc}") from None


def _wait_port(host: str, port: int, proc: Managed, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise FedlabError(f"{proc.name} exited with code {proc.popen.returncode}: {_last_error(proc)}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.3)
    raise FedlabError(f"{proc.name} did not open {host}:{port} within {timeout:.0f} s")


def _last_error(proc: Managed) -> str:
    lines = [ln for ln in proc.tail if re.search(r"ERROR|Error|error|Exit Code|refused|denied", ln)]
    picked = lines[-3:] if lines else list(proc.tail)[-3:]
    return " | ".join(ln.strip() for ln in picked) or "no output"


# -- the deployment ------------------------------------------------------------------


@dataclass
class LocalOptions:
    """What `run_local` starts. Paths may be relative to the current directory."""

    nodes: int = 2
    tls: bool = True
    auth: bool = True  # SuperNode authentication (needs TLS)
    rounds: int = 2
    federation: str = "digits"
    strategy: str = "fedavg"
    target: str | None = None  # None: the app's default (pyproject [tool.flwr.app.config])
    domains: Sequence[str] | None = None  # one per node; None: the federation's non-target domains
    local_steps: int = 5
    seed: int = 0
    out: Path = Path("runs/deploy")
    app_dir: Path | None = None  # the Flower app (folder with pyproject.toml); None: this checkout
    certs_dir: Path | None = None  # existing `fedlab deploy certs` output; None: fresh ones
    root_ca: Path | None = None  # CA the SuperNodes/CLI trust; None: the certs' ca.crt
    run_config: dict[str, Any] = field(default_factory=dict)  # extra [tool.flwr.app.config] overrides
    round_timeout: float = 300.0
    timeout: float = 1800.0  # whole run, from `flwr run` to finished
    startup_timeout: float = 120.0
    kill_node: tuple[int, str] | None = None  # (node 1..N, log regex of that node): SIGKILL it then
    keep_workdir: bool = False
    sink: Sink = field(default=lambda line: print(line, file=sys.stderr, flush=True))


@dataclass
class LocalResult:
    """Outcome of one deployed run."""

    run_id: int
    status: str
    run_dir: Path | None
    seconds_total: float  # first process started -> everything stopped
    seconds_run: float  # `flwr run` submitted -> run finished
    nodes: list[str]
    killed: list[str]
    workdir: Path | None
    leftover_pids: list[int]

    @property
    def ok(self) -> bool:
        return self.status == "finished:completed"


def _default_app_dir() -> Path:
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise FedlabError(f"no Flower app found at {root} (pyproject.toml missing); pass --app")
    return root


def _domains_for(opts: LocalOptions) -> list[str]:
    if opts.domains:
        domains = list(opts.domains)
    elif opts.federation == "digits":
        from fedlab.data.digits import DEFAULT_TARGET, DOMAINS

        target = opts.target or _app_config(opts).get("target") or DEFAULT_TARGET
        domains = [d for d in DOMAINS if d != target]
    else:
        raise FedlabError(f"federation {opts.federation!r}: pass --domains, one per SuperNode")
    if len(domains) < opts.nodes:
        domains = [domains[i % len(domains)] for i in range(opts.nodes)]
    return domains[: opts.nodes]


def _app_config(opts: LocalOptions) -> dict[str, Any]:
    import tomllib

    app_dir = opts.app_dir or _default_app_dir()
    data = tomllib.loads((Path(app_dir) / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(data.get("tool", {}).get("flwr", {}).get("app", {}).get("config", {}))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def _write_flower_config(home: Path, port: int, ca: Path | None) -> None:
    lines = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]"]
    lines.append(f'address = "{HOST}:{port}"')
    lines.append(f"root-certificates = {json.dumps(str(ca))}" if ca is not None else "insecure = true")
    ensure_private_dir(home)
    (home / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _child_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(FLWR_ENV)
    env["FLWR_HOME"] = str(home)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def _executable(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise FedlabError(f"{name} not found next to {sys.executable} or on PATH (is flwr installed?)")
    return found


class LocalDeployment:
    """The processes of one local deployment; `run()` drives them start to finish."""

    def __init__(self, opts: LocalOptions) -> None:
        if opts.nodes < 1:
            raise FedlabError(f"--nodes must be at least 1 (got {opts.nodes})")
        if opts.rounds < 1:
            raise FedlabError(f"--rounds must be at least 1 (got {opts.rounds})")
        self.opts = opts
        self.sink = opts.sink
        self.app_dir = Path(opts.app_dir or _default_app_dir()).resolve()
        self.domains = _domains_for(opts)
        self.workdir = Path(tempfile.mkdtemp(prefix="fedlab-deploy-"))
        self.home = self.workdir / "flwr-home"
        self.procs = Processes(self.workdir, _child_env(self.home), self.sink)
        self.nodes: list[Managed] = []
        self.killed: list[str] = []

    # -- steps -------------------------------------------------------------------------
    def _material(self) -> tuple[CertPaths | None, list[NodeKeys]]:
        opts = self.opts
        certs = None
        if opts.tls:
            if opts.certs_dir is not None:
                d = Path(opts.certs_dir).expanduser().resolve()  # processes run in the workdir
                certs = CertPaths(d, d / "ca.crt", d / "ca.key", d / "server.pem", d / "server.key",
                                  d / "superexec.secret", ())  # fmt: skip
                missing = [p for p in (certs.ca_cert, certs.server_cert, certs.server_key) if not p.is_file()]
                if missing:
                    raise FedlabError(f"{missing[0]} not found; run `fedlab deploy certs --out {d}` first")
            else:
                certs = generate_certs(self.workdir / "certs")
        keys = generate_node_keys(self.workdir / "keys", opts.nodes) if opts.tls and opts.auth else []
        return certs, keys

    def _flwr(self, name: str, *args: str, timeout: float = 180.0) -> Managed:
        return self.procs.run(name, [*FLWR_CLI, *args], timeout=timeout)

    def _start_superlink(self, port: int, certs: CertPaths | None) -> Managed:
        argv = [_executable("flower-superlink"), "--host", HOST, "--port", str(port)]
        argv += ["--disable-runtime-dependency-installation"]
        if certs is None:
            argv += ["--insecure"]
        else:
            argv += ["--ssl-ca-certfile", str(certs.ca_cert), "--ssl-certfile", str(certs.server_cert)]
            argv += ["--ssl-keyfile", str(certs.server_key)]
            if self.opts.auth:
                argv += ["--enable-supernode-auth"]
        link = self.procs.start("superlink", argv)
        _wait_port(HOST, port, link, self.opts.startup_timeout)
        return link

    def _register(self, keys: list[NodeKeys]) -> None:
        """`flwr supernode register` for every public key (concurrently: each CLI start is slow)."""
        runs = [
            self.procs.start(
                f"register-{k.name}",
                [*FLWR_CLI, "supernode", "register", str(k.public_key), CONNECTION],
                quiet=True,
            )
            for k in keys
        ]
        for managed in runs:
            try:
                managed.popen.wait(timeout=self.opts.startup_timeout)
            except subprocess.TimeoutExpired:
                limit = self.opts.startup_timeout
                raise FedlabError(f"{managed.name} did not finish in {limit:.0f} s") from None
            if managed.reader is not None:
                managed.reader.join(timeout=5)
            if managed.popen.returncode != 0 or "registered successfully" not in managed.output():
                raise FedlabError(f"{managed.name} failed: {_last_error(managed)}")
            self.sink(f"[{managed.name}] {managed.tail[-1] if managed.tail else 'ok'}")

    def _start_node(
        self, index: int, link_port: int, port: int, ca: Path | None, key: NodeKeys | None
    ) -> Managed:
        domain = self.domains[index - 1]
        argv = [_executable("flower-supernode"), "--superlink", f"{HOST}:{link_port}"]
        argv += ["--root-certificates", str(ca)] if ca is not None else ["--insecure"]
        if key is not None:
            argv += ["--auth-supernode-private-key", str(key.private_key)]
        argv += ["--host", HOST, "--port", str(port), "--max-retries", "3"]
        argv += ["--node-config", f"domain={json.dumps(domain)} client-id={index}"]
        return self.procs.start(f"supernode-{index}", argv)

    def _wait_nodes(self) -> None:
        deadline = time.monotonic() + self.opts.startup_timeout
        pending = {m.name: m for m in self.nodes}
        while pending:
            for name, node in list(pending.items()):
                if any("SuperNode ID:" in ln for ln in node.tail):
                    del pending[name]
                elif not node.alive():
                    hint = " (is its public key registered with the SuperLink?)" if self.opts.auth else ""
                    raise FedlabError(
                        f"{name} exited with code {node.popen.returncode}: {_last_error(node)}{hint}"
                    )
            if time.monotonic() > deadline:
                limit = self.opts.startup_timeout
                raise FedlabError(f"{', '.join(pending)} did not connect within {limit:.0f} s")
            time.sleep(0.3)

    def _arm_kill(self) -> None:
        if self.opts.kill_node is None:
            return
        index, pattern = self.opts.kill_node
        if not 1 <= index <= len(self.nodes):
            raise FedlabError(f"kill_node index {index} out of range 1..{len(self.nodes)}")
        victim, regex, fired = self.nodes[index - 1], re.compile(pattern), threading.Event()

        def watch(name: str, line: str) -> None:
            if name == victim.name and not fired.is_set() and regex.search(line):
                fired.set()
                self.sink(f"[fedlab] fault injection: killing {victim.name} (matched {pattern!r})")
                threading.Thread(target=self.procs.kill_tree, args=(victim,), daemon=True).start()
                self.killed.append(victim.name)

        self.procs.watchers.append(watch)

    def _run_config(self) -> str:
        opts = self.opts
        values: dict[str, Any] = {
            "federation": opts.federation,
            "strategy": opts.strategy,
            "num-server-rounds": opts.rounds,
            "local-steps": opts.local_steps,
            "seed": opts.seed,
            "out": str(Path(opts.out).expanduser().resolve()),
            "min-clients": opts.nodes,
            "round-timeout": float(opts.round_timeout),
            **({"target": opts.target} if opts.target else {}),
            **opts.run_config,
        }
        return " ".join(f"{k}={_toml_value(v)}" for k, v in values.items())

    def _submit_and_follow(self) -> tuple[int, str, Path | None]:
        """`flwr run --stream` (ServerApp log prefixed [serverapp]) until the run ends; then its status."""
        run_dir: list[Path] = []
        run_id: list[int] = []

        def watch(name: str, line: str) -> None:
            if name != "serverapp":
                return
            if (m := re.search(r"Successfully started run (\d+)", line)) and not run_id:
                run_id.append(int(m.group(1)))
            if m := re.search(r"run directory: (\S+)", line):
                run_dir.append(Path(m.group(1)))

        self.procs.watchers.append(watch)
        argv = [*FLWR_CLI, "run", str(self.app_dir), CONNECTION]
        argv += ["--run-config", self._run_config(), "--stream"]
        follower = self.procs.start("serverapp", argv)
        deadline = time.monotonic() + self.opts.timeout
        while follower.alive():
            if time.monotonic() > deadline:
                raise FedlabError(f"the run did not finish within {self.opts.timeout:.0f} s (--timeout)")
            link = self.procs.started[0]
            if not link.alive():
                code = link.popen.returncode
                raise FedlabError(f"the SuperLink exited mid-run (code {code}): {_last_error(link)}")
            time.sleep(0.5)
        if follower.reader is not None:
            follower.reader.join(timeout=5)
        if not run_id:
            code = follower.popen.returncode
            raise FedlabError(f"`flwr run` failed (code {code}): {_last_error(follower)}")
        status = self._status(run_id[0])
        return run_id[0], status, (run_dir[-1] if run_dir else None)

    def _status(self, run_id: int) -> str:
        """The run's final status from `flwr list` (the log stream can end a moment earlier)."""
        status = "unknown"
        for _ in range(10):
            listing = self._flwr("flwr-list", "list", "--run-id", str(run_id), "--format", "json", CONNECTION)
            text = listing.output()
            match = re.search(r"\{.*\}", text, re.S)
            try:
                runs = json.loads(match.group(0))["runs"] if match else []
            except (ValueError, KeyError):
                runs = []
            status = str(runs[0].get("status", "unknown")) if runs else "unknown"
            if status.startswith("finished"):
                break
            time.sleep(2)
        return status

    # -- driver ------------------------------------------------------------------------
    def run(self) -> LocalResult:
        opts = self.opts
        started = time.perf_counter()
        seconds_run = 0.0
        run_id, status, run_dir = -1, "not started", None
        leftovers: list[int] = []
        if not opts.tls:
            self.sink("[fedlab] WARNING: --insecure: no TLS, no SuperNode authentication; local tests only")
        elif not opts.auth:
            self.sink("[fedlab] WARNING: SuperNode authentication is OFF: any SuperNode may join")
        try:
            with _signals_raise_interrupt():
                certs, keys = self._material()
                ca = certs.ca_cert.resolve() if certs else None
                if opts.root_ca is not None and certs is not None:
                    ca = Path(opts.root_ca).resolve()
                link_port, *node_ports = free_ports(1 + opts.nodes)
                link = self._start_superlink(link_port, certs)
                if ca is not None:
                    check_tls(HOST, link_port, ca)
                _write_flower_config(self.home, link_port, ca)
                self.sink(f"[fedlab] SuperLink on {HOST}:{link_port} ({'TLS' if certs else 'insecure'})")
                if keys:
                    self._register(keys)
                for i in range(1, opts.nodes + 1):
                    key = keys[i - 1] if keys else None
                    self.nodes.append(self._start_node(i, link_port, node_ports[i - 1], ca, key))
                self._wait_nodes()
                self._arm_kill()
                joined = ", ".join(self.domains)
                self.sink(f"[fedlab] {opts.nodes} SuperNodes connected ({joined}); submitting the run")
                t_run = time.perf_counter()
                run_id, status, run_dir = self._submit_and_follow()
                seconds_run = time.perf_counter() - t_run
                if link.alive() is False:
                    status = f"{status} (SuperLink exited)"
        finally:
            with _interrupts_deferred():  # a second Ctrl-C must not abandon half-stopped processes
                leftovers = self.procs.stop_all()
            if leftovers:
                self.sink(f"[fedlab] WARNING: processes still running after cleanup: {leftovers}")
            if not opts.keep_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
        return LocalResult(
            run_id=run_id,
            status=status,
            run_dir=run_dir,
            seconds_total=time.perf_counter() - started,
            seconds_run=seconds_run,
            nodes=[f"{m.name}:{d}" for m, d in zip(self.nodes, self.domains, strict=False)],
            killed=list(self.killed),
            workdir=self.workdir if opts.keep_workdir else None,
            leftover_pids=leftovers,
        )


def run_local(opts: LocalOptions) -> LocalResult:
    """Start a SuperLink and SuperNodes on 127.0.0.1, run the app, stop everything; see module doc."""
    return LocalDeployment(opts).run()
