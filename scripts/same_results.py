"""Same seed, same results: fingerprints of fixed-seed runs, to compare before and after a refactor.

Why: a refactor must not move a number. This script runs a fixed set of short simulations, a
sweep and a study through the command line (the one interface a refactor keeps), and hashes what
they write — `metrics.jsonl`, `summary.json`, `model.pt`, the sweep's and study's tables — with
timings dropped (keys named in `TIMING_KEYS`) and JSON objects' key order normalised (the order in
which clients reply is not a result). `--save FILE` writes the fingerprints, `--check FILE`
compares with a saved set and prints one line per cell; exit 1 on any difference.

    python scripts/same_results.py --save /tmp/before.json      # on the old tree
    python scripts/same_results.py --check /tmp/before.json     # on the new tree

Cells: every built-in strategy on the embedded `digits` federation (in-process engine), FedKA on
the process and Flower engines, per-round sampling with evaluation every 2 rounds, the embedded
Adult federation raw / anonymized (k=10) / client DP-SGD / central DP, a two-strategy
sweep, a tiny study, and two audits (Adult k / ℓ; German by sex with t-closeness, logistic
regression). `--only NAME[,NAME]` runs a subset; `--ignore-keys KEY[,KEY]` drops record keys a
change adds on purpose (everything else must stay identical).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = {
    "seconds", "elapsed", "elapsed_s", "wall_s", "started", "finished", "created", "timings", "command",
}


IGNORED: set[str] = set()  # --ignore-keys: record keys a change adds on purpose, dropped on both sides


def _timing(key: str) -> bool:
    """Keys that hold timings, dates or the command line, not results (and --ignore-keys)."""
    return key in TIMING_KEYS or key in IGNORED or key.endswith("_seconds")
FAST = ["--rounds", "2", "--local-steps", "3", "--seed", "3"]
TAB = ["--config", "{tabular}"]  # the embedded Adult by race, 400 rows per domain (`adult_csv`)

CELLS: dict[str, list[str]] = {
    **{
        f"digits-{s}": ["simulate", "--strategy", s, *FAST]
        for s in ("fedavg", "fedprox", "fdan", "fdann", "fedka", "fedka-novote")
    },
    "digits-fedka-process": [
        "simulate", "--strategy", "fedka", "--engine", "process", "--workers", "2", *FAST,
    ],
    "digits-fedka-flower": ["simulate", "--strategy", "fedka", "--engine", "flower", *FAST],
    "digits-sampled": [
        "simulate", "--strategy", "fedka", "--rounds", "3", "--local-steps", "3", "--seed", "1",
        "--clients-per-round", "2", "--eval-every", "2", "--client-eval", "all",
    ],
    "adult-fedavg": ["simulate", *TAB, "--strategy", "fedavg", *FAST],
    "adult-fedka-k10": ["simulate", *TAB, "--strategy", "fedka", "--anonymize", "k=10", *FAST],
    "adult-dp-client": ["simulate", *TAB, "--strategy", "fedprox", "--dp", "--epsilon", "3", *FAST],
    "adult-dp-central": [
        "simulate", *TAB, "--strategy", "fedavg", "--dp", "--dp-mode", "central",
        "--noise-multiplier", "0.5", *FAST,
    ],
    "sweep-digits": [
        "simulate", "--strategy", "fedavg,fedka", "--seeds", "0,1", "--rounds", "2", "--local-steps", "2",
    ],
    "audit-adult": ["audit", "--k", "1,10,100", "--l-with-k", "2", "--seeds", "2"],
    "audit-german-split": [
        "audit", "--dataset", "german", "--k", "5", "--t", "0.5", "--split-by", "sex", "--seeds", "1",
        "--classifier", "logreg",
    ],
    "study-adult": [
        "study", "--strategies", "fedavg", "--epsilons", "none,3", "--anonymize", "none,k=10",
        "--seeds", "0", "--rounds", "2", "--local-steps", "3", "--max-per-domain", "300",
    ],
}


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in sorted(obj.items()) if not _timing(k)}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _file_print(path: Path) -> str:
    if path.suffix == ".jsonl":
        rows = [json.loads(x) for x in path.read_text().splitlines() if x]
        lines = [json.dumps(_strip(row), sort_keys=True) for row in rows]
        return _digest("\n".join(lines).encode())
    if path.suffix == ".json":
        return _digest(json.dumps(_strip(json.loads(path.read_text())), sort_keys=True).encode())
    if path.suffix == ".csv":
        frame = pd.read_csv(path)
        frame = frame[[c for c in frame.columns if not _timing(c)]]
        return _digest(frame.to_csv(index=False).encode())
    if path.suffix == ".pt":
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        buf = io.BytesIO()
        for key in sorted(state):
            buf.write(key.encode())
            buf.write(state[key].contiguous().numpy().tobytes())
        return _digest(buf.getvalue())
    return ""


def fingerprint(run_dir: Path) -> dict[str, str]:
    """name relative to the run directory -> digest, for every result file in it."""
    wanted = {".jsonl", ".json", ".pt", ".csv"}
    return {
        str(p.relative_to(run_dir)): _file_print(p)
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.suffix in wanted and p.name != "config.json" and "cells" not in p.parts
    }


def adult_csv(tmp: Path) -> Path:
    """The embedded Adult rows (train + test) as one headerless ``adult.data``, as the study uses."""
    import gzip

    path = tmp / "adult" / "adult.data"
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = []
    for name in ("adult.data.gz", "adult.test.gz"):
        (gz,) = [p for p in (ROOT / "audits").rglob(name) if ".venv" not in p.parts]
        with gzip.open(gz, "rt", encoding="utf-8") as fh:
            rows = [ln for ln in fh.read().splitlines() if ln.strip() and not ln.startswith("|")]
            chunks.append("\n".join(rows))
    path.write_text("\n".join(chunks) + "\n", encoding="utf-8")
    config = f'[federation]\nname = "tabular"\ncsv = "{path}"\nmax_per_domain = 400\n'
    (tmp / "tabular.toml").write_text(config, encoding="utf-8")
    return path


def run_cell(name: str, args: list[str], tmp: Path) -> dict[str, str]:
    out = tmp / name
    args = [a.replace("{tabular}", str(tmp / "tabular.toml")) for a in args]
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
    cmd = [sys.executable, "-m", "fedlab.cli", *args, "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": f"rc {proc.returncode}: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}"}
    return fingerprint(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path)
    group.add_argument("--check", type=Path)
    ap.add_argument("--only", default="", help="comma-separated cell names")
    ap.add_argument(
        "--ignore-keys",
        default="",
        help="comma-separated record keys to drop before hashing, e.g. a field a change adds on purpose "
        "(pass the same list to --save and --check)",
    )
    args = ap.parse_args()
    IGNORED.update(k for k in args.ignore_keys.split(",") if k)
    names = [n for n in args.only.split(",") if n] or list(CELLS)
    unknown = [n for n in names if n not in CELLS]
    if unknown:
        print(f"error: unknown cells {unknown}; expected some of {', '.join(CELLS)}", file=sys.stderr)
        return 2
    saved = json.loads(args.check.read_text()) if args.check else {}
    prints: dict[str, dict[str, str]] = {}
    different = 0
    with tempfile.TemporaryDirectory(prefix="same-results-") as tmp:
        adult_csv(Path(tmp))
        for name in names:
            prints[name] = run_cell(name, CELLS[name], Path(tmp))
            if args.check:
                before = saved.get(name)
                if before is None:
                    verdict = "not in the saved set"
                elif before == prints[name]:
                    verdict = f"identical ({len(before)} files)"
                else:
                    different += 1
                    now = prints[name]
                    changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
                    verdict = "DIFFERENT: " + ", ".join(changed[:6])
                print(f"{name:24s} {verdict}", flush=True)
            else:
                print(f"{name:24s} {len(prints[name])} files", flush=True)
    if args.save:
        args.save.write_text(json.dumps(prints, indent=1, sort_keys=True))
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
