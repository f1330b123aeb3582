"""The acceptance table of issue #27: every probe, its exit code and first line of output.

Why a script: the issue's closing note asks for "before -> after" of every bad input, kill and
port it found. Running this on two checkouts prints the two tables to compare:

    python scripts/probe_table.py                                   # this checkout, its venv
    python scripts/probe_table.py --root /path/to/main --python /path/to/main/.venv/bin/python

Each probe runs ``python -m fedlab.cli ...`` in a fresh temporary folder holding its fixtures
(small CSVs, a schema, a binary file) and reports: exit code, the first line of output (the
``error:`` line if there is one), how many lines were printed to stderr (a traceback is dozens),
and what the command left in the folder besides the fixtures. `--only a,b` runs a subset.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
}
QUICK = ["--rounds", "1", "--local-steps", "1", "--strategy", "fedavg"]
AUDIT_QUICK = ["--k", "2", "--seeds", "1", "--classifier", "logreg", "--quiet"]


# -- fixtures -----------------------------------------------------------------------------


def tabular_frame(n: int = 80) -> pd.DataFrame:
    """Two domains of `n` rows: numeric age/hours, categorical sex, binary income."""
    rng = np.random.default_rng(0)
    rows = 2 * n
    return pd.DataFrame(
        {
            "domain": ["A"] * n + ["B"] * n,
            "age": rng.integers(18, 70, rows),
            "hours": rng.integers(10, 60, rows).astype(float),
            "sex": rng.choice(["Male", "Female"], rows),
            "income": rng.choice([">50K", "<=50K"], rows),
        }
    )


def tabular_config(folder: Path, csv: Path, name: str = "tab.toml") -> Path:
    path = folder / name
    path.write_text(
        f'[federation]\nname = "tabular"\ncsv = "{csv}"\ndomain_column = "domain"\n'
        'label_column = "income"\npositive_label = ">50K"\nprotected = ["sex"]\n',
        encoding="utf-8",
    )
    return path


def audit_fixture(folder: Path, frame: pd.DataFrame | None = None, header: str | None = None) -> list[str]:
    """A CSV + schema for `fedlab audit` (target score binarised at the median)."""
    rng = np.random.default_rng(1)
    n = 300
    if frame is None:
        frame = pd.DataFrame(
            {
                "sex": rng.choice(["Male", "Female"], n),
                "age": rng.integers(18, 70, n),
                "hours": rng.integers(10, 60, n).astype(float),
                "score": rng.integers(1, 11, n),
            }
        )
    csv = folder / "audit.csv"
    text = frame.to_csv(index=False)
    if header is not None:
        text = header + "\n" + text.split("\n", 1)[1]
    csv.write_text(text, encoding="utf-8")
    (folder / "sex.csv").write_text("Male,*\nFemale,*\n", encoding="utf-8")
    schema = folder / "schema.toml"
    schema.write_text(
        'name = "probe"\ntarget = "score"\nthreshold = "median"\nquasi_identifiers = ["sex", "age"]\n'
        'protected = { sex = "Male" }\n[hierarchies]\nsex = { file = "sex.csv" }\n'
        "age = { intervals = { steps = [5, 10, 15], low = 0, high = 100 } }\n",
        encoding="utf-8",
    )
    return ["--csv", str(csv), "--schema", str(schema)]


def _csv(folder: Path, frame: pd.DataFrame, name: str = "t.csv", header: str | None = None) -> Path:
    path = folder / name
    text = frame.to_csv(index=False)
    if header is not None:
        text = header + "\n" + text.split("\n", 1)[1]
    path.write_text(text, encoding="utf-8")
    return path


def _with(frame: pd.DataFrame, column: str, value: float) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(float)
    frame.loc[3, column] = value
    return frame


# -- probes: each returns the fedlab arguments (fixtures written into `d`) -----------------


def _sim_tab(d: Path, frame: pd.DataFrame, header: str | None = None) -> list[str]:
    cfg = tabular_config(d, _csv(d, frame, header=header))
    return ["simulate", "--config", str(cfg), *QUICK, "--out", str(d / "run")]


def _missing_everywhere(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["hours"] = np.nan
    return frame


PROBES: dict[str, Callable[[Path], list[str]]] = {
    "config-binary": lambda d: (
        (d / "c.toml").write_bytes(bytes(range(256)) * 4),
        ["simulate", "--config", str(d / "c.toml"), "--out", str(d / "run")],
    )[1],
    "sim-inf": lambda d: _sim_tab(d, _with(tabular_frame(), "hours", float("inf"))),
    "sim-1e308": lambda d: _sim_tab(d, _with(tabular_frame(), "hours", 1e308)),
    "audit-inf": lambda d: ["audit", *audit_fixture(d, _with(_audit_frame(), "hours", float("inf"))),
                            *AUDIT_QUICK, "--out", str(d / "run")],
    "audit-1e308": lambda d: ["audit", *audit_fixture(d, _with(_audit_frame(), "hours", 1e308)),
                              *AUDIT_QUICK, "--out", str(d / "run")],
    "sim-out-is-file": lambda d: ((d / "f").write_text("x"), ["simulate", *QUICK, "--out", str(d / "f")])[1],
    "sim-out-below-file": lambda d: (
        (d / "f").write_text("x"), ["simulate", *QUICK, "--out", str(d / "f" / "run")]
    )[1],
    "sim-out-unwritable": lambda d: ["simulate", *QUICK, "--out", "/proc/fedlab-probe/run"],
    "audit-out-is-file": lambda d: (
        (d / "f").write_text("x"), ["audit", *audit_fixture(d), *AUDIT_QUICK, "--out", str(d / "f")]
    )[1],
    "audit-out-below-file": lambda d: (
        (d / "f").write_text("x"), ["audit", *audit_fixture(d), *AUDIT_QUICK, "--out", str(d / "f" / "r")]
    )[1],
    "audit-out-unwritable": lambda d: ["audit", *audit_fixture(d), *AUDIT_QUICK, "--out", "/proc/fedlab-p/r"],
    "sim-one-class-label": lambda d: _sim_tab(d, tabular_frame().assign(income=">50K")),
    "sim-duplicate-columns": lambda d: _sim_tab(d, tabular_frame(), header="domain,age,age,sex,income"),
    "audit-duplicate-columns": lambda d: ["audit", *audit_fixture(d, header="sex,age,age,score"),
                                          *AUDIT_QUICK, "--out", str(d / "run")],
    "sim-local-steps-1e21": lambda d: ["simulate", "--strategy", "fedavg", "--rounds", "1",
                                       "--local-steps", str(10**21), "--out", str(d / "run")],
    "sim-header-only": lambda d: _sim_tab(d, tabular_frame().iloc[:0]),
    "sim-every-row-missing": lambda d: _sim_tab(d, _missing_everywhere(tabular_frame())),
    "audit-header-only": lambda d: ["audit", *audit_fixture(d, _audit_frame().iloc[:0]),
                                    *AUDIT_QUICK, "--out", str(d / "run")],
    "sim-nan-loss-lr1e6": lambda d: (
        (d / "lr.toml").write_text("[training]\nlr = 1e6\n"),
        ["simulate", "--config", str(d / "lr.toml"), "--strategy", "fedavg", "--rounds", "2",
         "--local-steps", "3", "--out", str(d / "run")],
    )[1],
}  # fmt: skip


def _audit_frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 300
    return pd.DataFrame(
        {
            "sex": rng.choice(["Male", "Female"], n),
            "age": rng.integers(18, 70, n),
            "hours": rng.integers(10, 60, n).astype(float),
            "score": rng.integers(1, 11, n),
        }
    )


# -- running ------------------------------------------------------------------------------


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def first_line(stdout: str, stderr: str) -> str:
    lines = [ln for ln in (stderr + "\n" + stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    pick = errors[0] if errors else (lines[-1] if lines else "")
    return pick.strip()[:150]


def run_probe(name: str, python: str, root: Path, timeout: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"probe-{name}-") as tmp:
        d = Path(tmp)
        args = PROBES[name](d)
        before = _listing(d)
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [python, "-m", "fedlab.cli", *args], cwd=root, env=ENV, capture_output=True,
                text=True, timeout=timeout,
            )  # fmt: skip
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc, out, err = "timeout", str(exc.stdout or ""), f"(still running after {timeout:.0f} s)"
        written = sorted(_listing(d) - before)
        return {
            "probe": name,
            "rc": rc,
            "first": first_line(out if isinstance(out, str) else "", err if isinstance(err, str) else ""),
            "stderr_lines": len((err or "").splitlines()) if isinstance(err, str) else 0,
            "written": f"{len(written)} paths" if written else "nothing",
            "seconds": round(time.monotonic() - started, 1),
        }


# -- the kill / sweeper probes --------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[-1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def probe_sigkill(python: str, root: Path) -> dict[str, object]:
    """SIGKILL `simulate --engine process`: are its workers gone 5 s later, and is the partial
    folder removed by the next run?"""
    with tempfile.TemporaryDirectory(prefix="probe-kill-") as tmp:
        d = Path(tmp)
        args = ["simulate", "--engine", "process", "--workers", "2", "--strategy", "fedavg",
                "--rounds", "200", "--local-steps", "200", "--out", str(d / "run")]  # fmt: skip
        proc = subprocess.Popen([python, "-m", "fedlab.cli", *args], cwd=root, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        workers: list[int] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(workers) < 2:
            workers = _children(proc.pid)
            time.sleep(0.5)
        time.sleep(3)
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(5)
        alive = [p for p in workers if _alive(p)]
        partials = [p.name for p in d.glob(".run.partial-*")]
        nxt = subprocess.run([python, "-m", "fedlab.cli", "simulate", *QUICK, "--out", str(d / "run2")],
                             cwd=root, env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
        left = [p.name for p in d.glob(".run.partial-*")]
        for pid in [p for p in workers if _alive(p)]:  # ours: do not leave them running
            os.kill(pid, signal.SIGKILL)
        return {
            "probe": "sigkill-process-engine",
            "rc": -9,
            "first": f"{len(workers)} workers; alive 5 s after SIGKILL: {len(alive)}; partial before next "
            f"run: {len(partials)}, after next run (rc {nxt.returncode}): {len(left)}",
            "stderr_lines": 0,
            "written": f"{len(left)} partial" if left else "nothing",
            "seconds": 0,
        }


def probe_sweeper(python: str, root: Path) -> dict[str, object]:
    """A user's folder that only looks like a stale partial must survive an ordinary run."""
    with tempfile.TemporaryDirectory(prefix="probe-sweep-") as tmp:
        d = Path(tmp)
        mine = d / ".results.partial-keep"
        mine.mkdir()
        (mine / "notes.txt").write_text("user data")
        old = time.time() - 7200
        os.utime(mine, (old, old))
        proc = subprocess.run([python, "-m", "fedlab.cli", "simulate", *QUICK, "--out", str(d / "run")],
                              cwd=root, env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
        survived = (mine / "notes.txt").is_file()
        return {
            "probe": "sweeper-lookalike-folder",
            "rc": proc.returncode,
            "first": f"user folder .results.partial-keep (2 h old) {'survived' if survived else 'DELETED'}",
            "stderr_lines": len(proc.stderr.splitlines()),
            "written": "run",
            "seconds": 0,
        }


SPECIAL = {"sigkill-process-engine": probe_sigkill, "sweeper-lookalike-folder": probe_sweeper}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--only", default="")
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    names = [*PROBES, *SPECIAL]
    if args.only:
        names = [n for n in names if n in set(args.only.split(","))]
    print("| probe | rc | stderr lines | left behind | first line of output |")
    print("|---|---|---|---|---|")
    for name in names:
        if name in SPECIAL:
            row = SPECIAL[name](args.python, args.root)
        else:
            row = run_probe(name, args.python, args.root, args.timeout)
        first = str(row["first"]).replace("|", "\\|")
        print(f"| {row['probe']} | {row['rc']} | {row['stderr_lines']} | {row['written']} | {first} |",
              flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
