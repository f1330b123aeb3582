"""The real container deployment (slow): scripts/container-e2e.sh end to end.

Runs the script as a user would: SuperLink + 2 SuperNode containers from the images that
scripts/container-build.sh made, TLS + SuperNode authentication, 3 FedKA rounds through
`flwr run`, the run directory copied out, the per-round report printed, and every container
and network removed. Skips, saying exactly why, where no container engine can run them
(no podman/docker, no daemon, images not built, or the runtime refuses to start a container).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
IMAGES = (f"fedlab-superlink:{VERSION}", f"fedlab-supernode:{VERSION}")


def _engine_env() -> dict[str, str]:
    env = dict(os.environ)
    if shutil.which("runc") and "CONTAINERS_CONF" not in env:  # as the scripts do for podman
        env["CONTAINERS_CONF"] = str(ROOT / "docker" / "podman-containers.conf")
    return env


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if "failed to connect to syslog" not in ln]
    return lines[-1] if lines else "no output"


def container_engine() -> tuple[str | None, str]:
    """(engine, "") when one can run the images, else (None, the precise reason)."""
    wanted = os.environ.get("FEDLAB_CONTAINER_ENGINE")
    candidates = [wanted] if wanted else ["podman", "docker"]
    reasons = []
    for engine in candidates:
        if shutil.which(engine) is None:
            reasons.append(f"{engine}: not installed")
            continue
        env = _engine_env()
        info = subprocess.run([engine, "info"], capture_output=True, text=True, timeout=60, env=env)
        if info.returncode != 0:
            reasons.append(f"{engine}: `{engine} info` failed ({_last_line(info.stderr)})")
            continue
        missing = [
            img
            for img in IMAGES
            if subprocess.run(
                [engine, "image", "inspect", img], capture_output=True, timeout=60, env=env
            ).returncode
        ]
        if missing:
            reasons.append(
                f"{engine}: images {', '.join(missing)} not built (bash scripts/container-build.sh)"
            )
            continue
        probe = subprocess.run(
            [engine, "run", "--rm", "--network", "none", IMAGES[1], "--help"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        if probe.returncode != 0:
            reasons.append(f"{engine}: cannot start a container ({_last_line(probe.stderr)})")
            continue
        return engine, ""
    return None, "; ".join(reasons)


def _run_script(engine: str, tmp_path: Path, *args: str) -> tuple[int, str]:
    """scripts/container-e2e.sh with `args`, as a user runs it; (exit code, stdout + stderr)."""
    env = {**_engine_env(), "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "container-e2e.sh"), "--engine", engine, *args],
        capture_output=True, text=True, timeout=1700, env=env, cwd=ROOT,
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def _assert_same_run(sim: Any, out: Path) -> dict[str, Any]:
    """The one run directory under `out` has the simulation's metrics and model; its summary."""
    import torch

    (run_dir,) = list(out.iterdir())
    deployed = json.loads((run_dir / "summary.json").read_text())
    for key in ("initial_target_acc", "final_target_acc", "final_group_effect", "best_target_acc"):
        assert deployed[key] == sim.summary[key], key
    a = torch.load(sim.run_dir / "model.pt", weights_only=True)
    b = torch.load(run_dir / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return deployed


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_container_deployment_end_to_end(tmp_path: Path) -> None:
    engine, reason = container_engine()
    if engine is None:
        pytest.skip(f"no container runtime can run the deployment: {reason}")
    out = tmp_path / "runs"
    env = _engine_env()
    code, log = _run_script(engine, tmp_path, "--rounds", "3", "--out", str(out), "--require-all-nodes")
    assert code == 0, log[-6000:]
    # Per-round report: every reply arrived, in every round.
    for rnd in (1, 2, 3):
        assert re.search(rf"^round {rnd}: train 2/2 replies, evaluate 2/2 replies, target acc", log, re.M), (
            log
        )
    # The run directory was copied out of the SuperLink container.
    (run_dir,) = list(out.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["strategy"] == "fedka" and summary["rounds"] == 3 and summary["target"] == "colour"
    assert summary["deployment"]["clients_seen"] == ["0:original", "1:rotated"]  # the simulation's ids
    assert len(summary["deployment"]["replies"]) == 6
    assert (run_dir / "model.pt").stat().st_size > 0
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3
    # Everything it started is gone: containers, network, work folder.
    prefix = re.search(r"removed containers: (fedlab-e2e-\d+)-superlink", log)
    assert prefix, log[-3000:]
    names = subprocess.run(
        [engine, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert not [n for n in names if n.startswith(prefix.group(1))]
    networks = subprocess.run(
        [engine, "network", "ls", "--format", "{{.Name}}"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    assert f"{prefix.group(1)}-net" not in networks and f"{prefix.group(1)}-fleet" not in networks
    assert "supernode-1 cannot reach superlink:8000" in log  # only the Fleet gate is on its network
    assert not list(tmp_path.glob("fedlab-e2e.*")), "work folder (keys) left behind"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_container_deployment_reports_a_lost_node(tmp_path: Path) -> None:
    """supernode-2's container is killed after round 1's training: the run still completes,
    the report names it in every round from then on, and --require-all-nodes exits 3."""
    engine, reason = container_engine()
    if engine is None:
        pytest.skip(f"no container runtime can run the deployment: {reason}")
    code, log = _run_script(
        engine, tmp_path, "--rounds", "2", "--local-steps", "3", "--out", str(tmp_path / "runs"),
        "--stop-node", "2@1", "--round-timeout", "60", "--require-all-nodes",
    )  # fmt: skip
    assert code == 3, log[-6000:]
    # Killed right after round 1's training replies: round 1's evaluation may or may not
    # have reached it first; from round 2 on it is gone.
    assert re.search(r"^round 1: train 2/2 replies, evaluate [12]/2 replies", log, re.M), log[-4000:]
    lost = r"^round 2: train 1/2 replies, evaluate 1/2 replies.*LOST supernode-2 \(node \d+, 1:rotated\)"
    assert re.search(lost, log, re.M), log[-4000:]
    assert re.search(
        r"^error: 1 SuperNode\(s\) did not reply: supernode-2 .* in round\(s\) (1,)?2 ", log, re.M
    )
    assert "removed containers: fedlab-e2e-" in log


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("parent_sigint", ["default", "ignored"])
def test_ctrl_c_mid_run_removes_everything(tmp_path: Path, parent_sigint: str) -> None:
    """SIGINT to the script's process group (what Ctrl-C in a terminal sends) while `flwr run`
    streams: exit 130 within 5 s, no container, network or key folder left — also when the
    script was started with SIGINT ignored (as CI runners start children)."""
    import signal
    import time

    engine, reason = container_engine()
    if engine is None:
        pytest.skip(f"no container runtime can run the deployment: {reason}")
    env = {**_engine_env(), "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    env.pop("FEDLAB_E2E_SIGNALS", None)
    disposition = signal.SIG_IGN if parent_sigint == "ignored" else signal.SIG_DFL  # default: a terminal
    log_path = tmp_path / "e2e.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "container-e2e.sh"), "--engine", engine, "--out", str(tmp_path)],
            stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, disposition),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 600
            while "[ROUND 1/" not in log_path.read_text() and proc.poll() is None:
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(1)
            os.killpg(proc.pid, signal.SIGINT)
            started = time.monotonic()
            code = proc.wait(timeout=120)
            stopped_in = time.monotonic() - started
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    log = log_path.read_text()
    assert code == 130, log[-3000:]
    assert stopped_in <= 5, f"took {stopped_in:.1f} s to stop"  # issue #27.8
    prefix = re.search(r"removed containers: (fedlab-e2e-\d+)-superlink", log)
    assert prefix, log[-3000:]
    names = subprocess.run(
        [engine, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert not [n for n in names if n.startswith(prefix.group(1))]
    assert not list(tmp_path.glob("fedlab-e2e.*")), "work folder (keys) left behind"


def test_skip_reason_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDLAB_CONTAINER_ENGINE", "no-such-engine")
    assert container_engine() == (None, "no-such-engine: not installed")


COMPAS = ROOT.parent / "shared" / "data" / "compas" / "compas-scores-two-years.csv"


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not COMPAS.is_file(), reason=f"{COMPAS} not found (../shared/data)")
def test_containers_reproduce_the_simulation_of_a_config(tmp_path: Path) -> None:
    """Issue #27.6/7: a file-based federation from a fedlab config (COMPAS, tabular, 2 rounds),
    deployed in containers through the Fleet gate, gives the simulation's metrics and model."""
    from fedlab.config import load_simulation_config
    from fedlab.runs.simulate import simulate

    example_file = ROOT / "docs" / "examples" / "compas_federation.toml"
    example = tomllib.loads(example_file.read_text(encoding="utf-8"))
    fed = {k: v for k, v in example["federation"].items() if k not in ("schema", "clients_per_domain")}
    fed.update(clients_per_domain=1, max_per_domain=400)
    lines = ["seed = 0", "[federation]"] + [f"{k} = {json.dumps(v)}" for k, v in fed.items()]
    lines += ["[training]", 'strategy = "fedavg"', "rounds = 2", "local_steps = 3", "lr = 0.1"]
    config = tmp_path / "compas.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = COMPAS.parents[1]
    sim = simulate(load_simulation_config(config, {"federation.data_dir": str(data)}), out=tmp_path / "sim")

    engine, reason = container_engine()
    if engine is None:
        pytest.skip(f"no container runtime can run the deployment: {reason}")
    out = tmp_path / "runs"
    args = ("--config", str(config), "--data-dir", str(data), "--out", str(out), "--require-all-nodes")
    code, log = _run_script(engine, tmp_path, *args)
    assert code == 0, log[-6000:]
    _assert_same_run(sim, out)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_containers_reproduce_the_simulation_of_an_embedded_config(tmp_path: Path) -> None:
    """Issue #27.6: the issue's own job (FedKA, digits original + rotated -> colour), from a
    config with no data directory (embedded federation), 2 rounds: the containers give the
    simulation's metrics, clients and model. A `--config` without `--data-dir` once ended the
    script silently with exit 1 (a `set -e` test inside the node-config string)."""
    from fedlab.config import load_simulation_config
    from fedlab.runs.simulate import simulate

    config = tmp_path / "fedka.toml"
    config.write_text(
        'seed = 0\n[federation]\nname = "digits"\ndomains = ["original", "rotated", "colour"]\n'
        '[training]\nstrategy = "fedka"\ntarget = "colour"\nrounds = 2\nlocal_steps = 5\n',
        encoding="utf-8",
    )
    sim = simulate(load_simulation_config(config, {}), out=tmp_path / "sim")

    engine, reason = container_engine()
    if engine is None:
        pytest.skip(f"no container runtime can run the deployment: {reason}")
    out = tmp_path / "runs"
    args = ("--config", str(config), "--out", str(out), "--require-all-nodes")
    code, log = _run_script(engine, tmp_path, *args)
    assert code == 0, log[-6000:]
    deployed = _assert_same_run(sim, out)
    assert [(c["id"], c["domain"]) for c in deployed["clients"]] == [
        (c["id"], c["domain"]) for c in sim.summary["clients"]
    ]
