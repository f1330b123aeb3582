"""Ctrl-C / SIGTERM on a real `fedlab simulate` process, and stale .partial folders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedlab.core.rundir import MARKER, MARKER_TEXT, OWNER_LOCK, atomic_run_dir, remove_stale_partials

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "PYTHONPATH": str(ROOT)}


def _start(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    args = ["--rounds", "200", "--local-steps", "20", "--strategy", "fedavg", "--out", str(tmp_path / "run")]
    return subprocess.Popen(
        [sys.executable, "-m", "fedlab.cli", "simulate", *args, *extra],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as a foreground command in a terminal: a shell that starts pytest in the background
        # (`cmd &` without job control) has set SIGINT to "ignore", which children inherit
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for_round(proc: subprocess.Popen[str], timeout: float = 240) -> None:
    """Read the plain-text progress lines (stderr is not a terminal) until training has begun."""
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            pytest.fail(f"simulate exited early with {proc.returncode}")
        if "round 1:" in line or " 1/200 " in line:
            return
    pytest.fail("no progress line within the timeout")


@pytest.mark.parametrize(
    ("sig", "code", "extra"),
    [
        (signal.SIGINT, 130, ("--engine", "inprocess")),
        (signal.SIGTERM, 143, ("--engine", "inprocess")),
        # the ServerApp runs on the main thread: Ctrl-C lands inside CNN training / a pool wait
        (signal.SIGINT, 130, ("--engine", "inprocess", "--federation", "digits")),
        (signal.SIGINT, 130, ("--engine", "process", "--workers", "2")),
        pytest.param(signal.SIGINT, 130, ("--engine", "flower"), marks=pytest.mark.slow),
    ],
    ids=["SIGINT-inprocess", "SIGTERM-inprocess", "SIGINT-digits", "SIGINT-process", "SIGINT-flower"],
)
def test_signal_stops_within_5s_and_leaves_nothing(tmp_path, sig, code, extra) -> None:
    proc = _start(tmp_path, *extra)
    try:
        _wait_for_round(proc)
        proc.send_signal(sig)
        sent = time.monotonic()
        rc = proc.wait(timeout=15)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == code
    assert took < 5.0, f"took {took:.1f} s to exit"
    assert not (tmp_path / "run").exists()
    assert not list(tmp_path.glob(".*partial*")), list(tmp_path.iterdir())


def test_stale_partial_removed_live_one_kept(tmp_path) -> None:
    stale = tmp_path / ".old-run.partial-abc123"
    stale.mkdir()
    (stale / MARKER).write_text(MARKER_TEXT)
    (stale / OWNER_LOCK).write_text("")
    (stale / "metrics.jsonl").write_text("{}\n")
    # a live owner: another process holding the lock
    live = tmp_path / ".live-run.partial-def456"
    live.mkdir()
    (live / MARKER).write_text(MARKER_TEXT)
    (live / OWNER_LOCK).write_text("")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl,sys,time;f=open(sys.argv[1],'a');fcntl.flock(f,fcntl.LOCK_EX);"
            "print('locked',flush=True);time.sleep(60)",
            str(live / OWNER_LOCK),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with atomic_run_dir(tmp_path / "new-run") as work:
            (work / "x.txt").write_text("x")
        assert not stale.exists()
        assert live.exists()
        assert (tmp_path / "new-run" / "x.txt").exists()
        assert not (tmp_path / "new-run" / OWNER_LOCK).exists()
    finally:
        holder.kill()
        holder.wait()
    assert remove_stale_partials(tmp_path) == [live]


def test_sigkilled_run_is_cleaned_at_next_start(tmp_path) -> None:
    code = (
        "import os,signal,sys;from pathlib import Path;from fedlab.core.rundir import atomic_run_dir\n"
        "with atomic_run_dir(Path(sys.argv[1])) as w:\n"
        "    (w/'half.txt').write_text('x'); print('in',flush=True); os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "r")], env=ENV, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL and proc.stdout.strip() == "in"
    assert len(list(tmp_path.glob(".r.partial-*"))) == 1
    with atomic_run_dir(tmp_path / "other"):
        pass
    assert list(tmp_path.glob(".*partial*")) == []
