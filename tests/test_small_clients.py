"""Clients too small to train (1 row under BatchNorm): a clear reason per failed update, and one
warning before the run that says how many there are and on which domains."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from fedlab.config import load_simulation_config
from fedlab.federation.setup import setup_for
from fedlab.learn.models import FeatureMLP
from fedlab.learn.training import LocalTrainSpec, train_local
from fedlab.runs.study import embedded_adult_csv

SPEC = LocalTrainSpec(mode="ce", steps=2, batch_size=8, lr=0.1)


def _rows(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 10)).astype(np.float32), np.arange(n, dtype=np.int64) % 3


def test_one_row_under_batchnorm_fails_with_the_reason() -> None:
    import torch

    with pytest.raises(ValueError, match="client has 1 training row; the model's BatchNorm layers need 2"):
        train_local(FeatureMLP(10, 3), *_rows(1), SPEC, torch.device("cpu"), seed=0)
    result = train_local(FeatureMLP(10, 3), *_rows(2), SPEC, torch.device("cpu"), seed=0)
    assert np.isfinite(result.loss)


def _adult_config(tmp_path, per_domain: int):
    csv = embedded_adult_csv(tmp_path / "data")
    over = {
        "federation.name": "tabular",
        "federation.csv": str(csv),
        "federation.clients_per_domain": per_domain,
    }
    return load_simulation_config(None, over), csv


def test_clients_too_small_counts_them_per_domain(tmp_path) -> None:
    cfg, _ = _adult_config(tmp_path, 250)
    setup = setup_for(cfg)
    expected: dict[str, tuple[int, int]] = {}
    for c in setup.clients:
        small, total = expected.get(c.domain, (0, 0))
        expected[c.domain] = (small + (len(c.y_train) < 2), total + 1)
    expected = {d: v for d, v in expected.items() if v[0]}
    assert expected, "Adult by race at 250 clients per domain has 1-row clients"
    assert setup.clients_too_small() == expected
    few, _ = _adult_config(tmp_path, 2)
    assert setup_for(few).clients_too_small() == {}


def test_cli_warns_once_before_the_run(tmp_path) -> None:
    _, csv = _adult_config(tmp_path, 250)
    toml = tmp_path / "n1000.toml"
    toml.write_text(
        f'[federation]\nname = "tabular"\ncsv = "{csv.as_posix()}"\nclients_per_domain = 250\n'
        '[training]\nstrategy = "fedavg"\nrounds = 1\nlocal_steps = 2\nclients_per_round = 10\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "fedlab.cli", "simulate", "--config", str(toml), "--seeds", "0,1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "FLWR_TELEMETRY_ENABLED": "0"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, warnings
    assert "clients have too few training rows to take a step (" in warnings[0]
    assert "use fewer clients per domain" in warnings[0]
