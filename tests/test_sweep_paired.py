"""A sweep from the CLI: paired statistics vs FedAvg in table.csv, paired.csv, summary.json, console."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

ENV = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0"}
CONFIG = """
[federation]
name = "digits"
domains = ["original", "rotated", "inverted"]
max_per_domain = 40
[training]
rounds = 1
local_steps = 2
batch_size = 16
target_sample = 32
"""


def test_sweep_writes_and_prints_paired_statistics(tmp_path) -> None:
    (tmp_path / "c.toml").write_text(CONFIG)
    out = tmp_path / "sweep"
    args = ["--config", "c.toml", "--strategy", "fedavg,fdan", "--target", "rotated", "--seeds", "0,1"]
    res = subprocess.run(
        [sys.executable, "-m", "fedlab.cli", "simulate", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**ENV, "COLUMNS": "250"},
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert "paired difference vs fedavg per seed" in res.stdout and "paired t over seeds" in res.stdout
    assert "rotated, fdan vs fedavg (final): " in res.stdout
    table = pd.read_csv(out / "table.csv")
    fdan = table[table["strategy"] == "fdan"].iloc[0]
    runs = pd.read_csv(out / "runs.csv").set_index(["strategy", "seed"])
    diffs = [
        100 * (runs.loc[("fdan", s), "final_target_acc"] - runs.loc[("fedavg", s), "final_target_acc"])
        for s in (0, 1)
    ]
    assert abs(fdan["final_acc_diff_pp_mean"] - sum(diffs) / 2) < 1e-9
    assert fdan["final_acc_diff_pp_wins"] == sum(d > 1e-12 for d in diffs)
    assert pd.isna(table[table["strategy"] == "fedavg"].iloc[0]["final_acc_diff_pp_mean"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["paired_methods"]["differences"] == "paired t over seeds"
    cell = summary["paired"][0]
    assert cell["seed_list"] == [0, 1]
    assert cell["final"]["values"] == pytest.approx([float(d) for d in diffs], abs=1e-9)
    assert (out / "paired.csv").is_file()
    report = subprocess.run(
        [sys.executable, "-m", "fedlab.cli", "report", str(out), "--format", "md"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=ENV,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    md = (out / "report.md").read_text()
    assert "Paired comparison with fedavg" in md and " pp" in md
