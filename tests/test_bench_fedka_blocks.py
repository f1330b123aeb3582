"""bench/bench_fedka_blocks.py: bad arguments stop before anything is written; the report pairs
complete (seed, target) blocks only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_fedka_blocks.py"


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120,
        env={"FLWR_TELEMETRY_ENABLED": "0", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--worker", "0/2"], "--worker '0/2'"),  # 0-based index: ran the wrong blocks before the check
        (["--worker", "3/2"], "--worker '3/2'"),
        (["--variants", "1,2"], "--variants '1,2'"),
        (["--variants", "0,99"], "--variants '0,99'"),
        (["--config", "no/such.toml"], "--config no/such.toml"),
    ],
)
def test_bad_arguments_give_one_error_line_and_write_nothing(tmp_path, args, names):
    out = tmp_path / "blocks"
    proc = _bench(*args, "--out", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0]
    assert not out.exists()


def test_report_uses_complete_blocks_only(tmp_path):
    out = tmp_path / "blocks"
    out.mkdir()
    rows = []
    for target in ("a", "b"):
        for seed in (0, 1, 2):
            base = 0.5 + 0.01 * seed
            rows.append({"target": target, "seed": seed, "variant": 0, "final_target_acc": base,
                         "best_target_acc": base, "final_group_effect": 0.0})  # fmt: skip
            rows.append({"target": target, "seed": seed, "variant": 1, "final_target_acc": base + 0.02,
                         "best_target_acc": base + 0.02, "final_group_effect": 0.0})  # fmt: skip
    # an unfinished block: FedAvg ran, variant 1 did not (a far-off value that would show if used)
    rows.append({"target": "a", "seed": 3, "variant": 0, "final_target_acc": 0.0,
                 "best_target_acc": 0.0, "final_group_effect": 0.0})  # fmt: skip
    pd.DataFrame(rows).to_csv(out / "runs.csv", index=False)
    proc = _bench("--out", str(out), "--variants", "0,1", "--report")
    assert proc.returncode == 0, proc.stderr
    assert "6 complete blocks" in proc.stdout
    assert "a s3" not in proc.stdout
    assert "+2.0 pp" in proc.stdout and "3/3 wins" in proc.stdout
    # FedAvg's Group Effect is 0 on every seed: its interval cannot exclude 0, so no ratio is printed
    assert "unbounded (FedAvg GE" in proc.stdout and "×" not in proc.stdout


DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not (DATA / "compas").is_dir(), reason="the shared COMPAS data is not here")
def test_a_config_federation_runs_at_its_own_settings(tmp_path):
    """--config: the user's federation TOML (not the image protocol), each variant's switches on top."""
    out = tmp_path / "compas"
    config = Path(__file__).resolve().parents[1] / "docs" / "examples" / "compas_federation.toml"
    proc = _bench("--config", str(config), "--data-dir", str(DATA), "--out", str(out), "--variants", "0,8",
                  "--seeds", "0", "--targets", "Less than 25", "--rounds", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["variant"]) == [0, 8] and set(runs["target"]) == {"Less than 25"}
    assert "DEPARTURE from the config: training.rounds = 2" in proc.stdout
    summary = next(out.glob("runs-w1/v8-*/*/summary.json")).read_text()
    assert '"strategy": "fedka"' in summary and '"federation": "tabular"' in summary
