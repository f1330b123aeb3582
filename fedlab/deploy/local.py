"""`fedlab deploy local`: a real Flower deployment (SuperLink + N SuperNodes) on 127.0.0.1.

Why processes and not the simulation engine: deployment exercises what simulation
cannot — TLS, SuperNode authentication, the FAB shipped by ``flwr run``, clients that
load their own data from ``--node-config``, and nodes that die. This module starts
exactly the processes an operator would (``flower-superlink``, ``flower-supernode``, the
``flwr`` CLI; SuperExec is spawned by them in ``subprocess`` isolation), in order, and
drives the run from submission to its final status. What each process is told lives in
`fedlab.deploy.flower_config`; `fedlab.deploy.processes` streams their output and guarantees
they are all gone afterwards. Cleanup runs in ``finally``, on Ctrl-C and on SIGTERM/SIGHUP.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedlab.core.errors import FedlabError
from fedlab.deploy.certs import CertPaths, NodeKeys, generate_certs, generate_node_keys
from fedlab.deploy.flower_config import (
    app_config,
    child_env,
    default_app_dir,
    existing_certs,
    gate_argv,
    list_argv,
    register_argv,
    run_argv,
    run_config_arg,
    run_status,
    superlink_argv,
    supernode_argv,
    write_cli_config,
)
from fedlab.deploy.from_config import config_domains, whole_config
from fedlab.deploy.network import HOST, check_tls, free_ports
from fedlab.deploy.processes import (
    Managed,
    Processes,
    Sink,
    interrupts_deferred,
    last_error,
    signals_raise_interrupt,
    wait_port,
)


@dataclass
class LocalOptions:
    """What `run_local` starts. Paths may be relative to the current directory."""

    nodes: int = 2
    tls: bool = True
    auth: bool = True  # SuperNode authentication (needs TLS)
    # SuperNodes reach the SuperLink through the Fleet gate (`fedlab.deploy.fleet_gate`): only the
    # Fleet API is served to them, the Control API stays on the SuperLink's loopback port
    gate: bool = True
    rounds: int = 2
    federation: str = "digits"
    strategy: str = "fedavg"
    target: str | None = None  # None: the app's default (pyproject [tool.flwr.app.config])
    domains: Sequence[str] | None = None  # one per node; None: the federation's non-target domains
    local_steps: int = 5
    seed: int = 0
    # file-based federations: the ServerApp's target data (run config data-dir) and each
    # SuperNode's own data (node config data-dir); one folder on this one machine
    data_dir: Path | None = None
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
    # the whole fedlab config (`fedlab deploy local --config`): any federation, every setting; it
    # then decides federation, strategy, target, rounds, local steps, seed and data folder
    config: Any = None  # fedlab.config.SimulationConfig
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


def with_config(opts: LocalOptions) -> LocalOptions:
    """`opts` with the fields its `config` decides taken from it (unchanged without a config)."""
    cfg = opts.config
    if cfg is None:
        return opts
    data_dir = cfg.federation.data_dir
    return dataclasses.replace(
        opts,
        federation=cfg.federation.name,
        strategy=cfg.training.strategy,
        target=cfg.training.target,
        rounds=cfg.training.rounds,
        local_steps=cfg.training.local_steps,
        seed=cfg.seed,
        data_dir=Path(data_dir).expanduser().resolve() if data_dir else None,
    )


def _domains_for(opts: LocalOptions) -> list[str]:
    if opts.domains:
        domains = list(opts.domains)
    elif opts.config is not None:
        domains = config_domains(opts.config)
    elif opts.federation == "digits":
        from fedlab.data.digits import DEFAULT_TARGET, DOMAINS

        target = opts.target or app_config(opts.app_dir or default_app_dir()).get("target") or DEFAULT_TARGET
        domains = [d for d in DOMAINS if d != target]
    else:
        raise FedlabError(f"federation {opts.federation!r}: pass --domains, one per SuperNode")
    if len(domains) < opts.nodes:
        domains = [domains[i % len(domains)] for i in range(opts.nodes)]
    return domains[: opts.nodes]


class LocalDeployment:
    """The processes of one local deployment; `run()` drives them start to finish."""

    def __init__(self, opts: LocalOptions) -> None:
        if opts.nodes < 1:
            raise FedlabError(f"--nodes must be at least 1 (got {opts.nodes})")
        if opts.rounds < 1:
            raise FedlabError(f"--rounds must be at least 1 (got {opts.rounds})")
        opts = with_config(opts)
        self.opts = opts
        self.sink = opts.sink
        self.app_dir = Path(opts.app_dir or default_app_dir()).resolve()
        self.domains = _domains_for(opts)
        self.submitted = self._run_config()  # checked before anything starts (e.g. a schema off-site)
        self.workdir = Path(tempfile.mkdtemp(prefix="fedlab-deploy-"))
        self.home = self.workdir / "flwr-home"
        self.procs = Processes(self.workdir, child_env(self.home), self.sink)
        self.nodes: list[Managed] = []
        self.killed: list[str] = []

    # -- steps -------------------------------------------------------------------------
    def _material(self) -> tuple[CertPaths | None, list[NodeKeys]]:
        opts = self.opts
        certs = None
        if opts.tls:
            if opts.certs_dir is not None:
                certs = existing_certs(opts.certs_dir)
            else:
                certs = generate_certs(self.workdir / "certs")
        keys = generate_node_keys(self.workdir / "keys", opts.nodes) if opts.tls and opts.auth else []
        return certs, keys

    def _start_superlink(self, port: int, certs: CertPaths | None) -> Managed:
        link = self.procs.start("superlink", superlink_argv(port, certs, self.opts.auth))
        wait_port(HOST, port, link, self.opts.startup_timeout)
        return link

    def _register(self, keys: list[NodeKeys]) -> None:
        """`flwr supernode register` for every public key (concurrently: each CLI start is slow)."""
        runs = [self.procs.start(f"register-{k.name}", register_argv(k), quiet=True) for k in keys]
        for managed in runs:
            try:
                managed.popen.wait(timeout=self.opts.startup_timeout)
            except subprocess.TimeoutExpired:
                limit = self.opts.startup_timeout
                raise FedlabError(f"{managed.name} did not finish in {limit:.0f} s") from None
            if managed.reader is not None:
                managed.reader.join(timeout=5)
            if managed.popen.returncode != 0 or "registered successfully" not in managed.output():
                raise FedlabError(f"{managed.name} failed: {last_error(managed)}")
            self.sink(f"[{managed.name}] {managed.tail[-1] if managed.tail else 'ok'}")

    def _start_node(
        self, index: int, link_port: int, port: int, ca: Path | None, key: NodeKeys | None
    ) -> Managed:
        argv = supernode_argv(index, self.domains[index - 1], link_port, port, ca, key, self.opts.data_dir)
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
                        f"{name} exited with code {node.popen.returncode}: {last_error(node)}{hint}"
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
        if opts.config is not None:  # the whole config, as the simulation passes it
            out = str(Path(opts.out).expanduser().resolve())
            deployment = {"min-clients": opts.nodes, "round-timeout": float(opts.round_timeout), "out": out}
            text = whole_config(opts.config, out, opts.data_dir)
            return run_config_arg({"fedlab-config": text, **deployment, **opts.run_config})
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
            **({"data-dir": str(Path(opts.data_dir).expanduser().resolve())} if opts.data_dir else {}),
            **opts.run_config,
        }
        return run_config_arg(values)

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
        follower = self.procs.start("serverapp", run_argv(self.app_dir, self.submitted))
        deadline = time.monotonic() + self.opts.timeout
        while follower.alive():
            if time.monotonic() > deadline:
                raise FedlabError(f"the run did not finish within {self.opts.timeout:.0f} s (--timeout)")
            link = self.procs.started[0]
            if not link.alive():
                code = link.popen.returncode
                raise FedlabError(f"the SuperLink exited mid-run (code {code}): {last_error(link)}")
            time.sleep(0.5)
        if follower.reader is not None:
            follower.reader.join(timeout=5)
        if not run_id:
            code = follower.popen.returncode
            raise FedlabError(f"`flwr run` failed (code {code}): {last_error(follower)}")
        status = self._status(run_id[0])
        return run_id[0], status, (run_dir[-1] if run_dir else None)

    def _status(self, run_id: int) -> str:
        """The run's final status from `flwr list` (the log stream can end a moment earlier)."""
        status = "unknown"
        for _ in range(10):
            listing = self.procs.run("flwr-list", list_argv(run_id), timeout=180.0)
            status = run_status(listing.output())
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
            with signals_raise_interrupt():
                certs, keys = self._material()
                ca = certs.ca_cert.resolve() if certs else None
                if opts.root_ca is not None and certs is not None:
                    ca = Path(opts.root_ca).resolve()
                link_port, fleet_port, *node_ports = free_ports(2 + opts.nodes)
                link = self._start_superlink(link_port, certs)
                if ca is not None:
                    check_tls(HOST, link_port, ca)
                write_cli_config(self.home, link_port, ca)
                self.sink(f"[fedlab] SuperLink on {HOST}:{link_port} ({'TLS' if certs else 'insecure'})")
                if opts.gate:
                    gate = self.procs.start("fleet-gate", gate_argv(fleet_port, link_port, certs))
                    wait_port(HOST, fleet_port, gate, opts.startup_timeout)
                    self.sink(f"[fedlab] Fleet gate on {HOST}:{fleet_port} (SuperNodes: Fleet API only)")
                else:
                    fleet_port = link_port
                if keys:
                    self._register(keys)
                for i in range(1, opts.nodes + 1):
                    key = keys[i - 1] if keys else None
                    self.nodes.append(self._start_node(i, fleet_port, node_ports[i - 1], ca, key))
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
            with interrupts_deferred():  # a second Ctrl-C must not abandon half-stopped processes
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
