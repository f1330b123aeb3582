"""Issue #27: the workers of ``fedlab simulate --engine process`` die with their parent.

SIGKILL the parent mid-run: 5 s later no worker is alive (PR_SET_PDEATHSIG, the parent pipe or
the ppid watchdog of `fedlab.runtime.parent_watch`), so the run directory's lock is free and the
next run removes the partial folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedlab.core.rundir import atomic_run_dir
from fedlab.runtime.parent_watch import ParentLink, close_parent_link, parent_link

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[-1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")
def test_sigkilled_parent_leaves_no_worker_and_next_run_cleans(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "fedlab.cli", "simulate", "--engine", "process", "--workers", "2",
            "--strategy", "fedavg", "--rounds", "500", "--local-steps", "200",
            "--out", str(tmp_path / "run")]  # fmt: skip
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0"}
    parent = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and len(workers) < 2:
            workers = _children(parent.pid)
            time.sleep(0.3)
        assert len(workers) == 2, "the process engine did not start its workers"
        assert list(tmp_path.glob(".run.partial-*")), "no partial folder while running"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        time.sleep(5)
        assert [p for p in workers if _alive(p)] == []
        with atomic_run_dir(tmp_path / "next") as work:  # sweeps the parent folder
            (work / "x").write_text("x")
        assert not list(tmp_path.glob(".run.partial-*"))
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_closing_the_parent_link_is_idempotent() -> None:
    link = parent_link(forked=True)
    assert link.read_fd >= 0 and link.write_fd >= 0 and link.parent_pid == os.getpid()
    close_parent_link(link)
    close_parent_link(link)
    close_parent_link(None)
    assert parent_link(forked=False) == ParentLink(os.getpid(), pdeathsig=link.pdeathsig)
