"""Bad input: one-line error naming what was wrong, non-zero exit, no run directory left."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0"}


def _fedlab(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedlab.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--federation", "nope"], "unknown federation 'nope'; expected one of digits"),
        (["--strategy", "fedbad"], "unknown strategy 'fedbad'; expected one of fedavg"),
        (["--target", "mars"], "unknown target domain 'mars'"),
        (["--federation", "office-caltech10", "--data-dir", "does-not-exist"], "does-not-exist"),
        (["--pattern", "*.csv"], "--pattern applies to --federation features only"),
        (["--protocol", "fedka2023"], "protocol: Input should be '' or 'fedka2022'"),
        (["--seeds", "a,b"], "--seeds 'a,b': 'a' is not an integer"),
        (["--seeds", ","], "--seeds ',': no seed given"),
        (["--seeds", "0,0"], "--seeds '0,0': seed 0 is given twice"),
        (["--gpus-per-client", "2"], "--gpus-per-client: Input should be less than or equal to 1"),
        (["--client-eval", "some"], "--client-eval: Input should be 'none', 'sampled' or 'all'"),
        (["--clients-per-round", "9"], "--clients-per-round 9 exceeds the federation's 4 clients"),
    ],
)
def test_simulate_bad_input_is_one_line_and_leaves_nothing(tmp_path, args, expected) -> None:
    out = tmp_path / "run"
    res = _fedlab("simulate", *args, "--out", str(out), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], res.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_invalid_config_file_values(tmp_path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[training]\nrounds = 0\nlr = -1\n")
    res = _fedlab("simulate", "--config", str(cfg), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert res.returncode == 2
    line = res.stderr.strip()
    assert "\n" not in line and "bad.toml" in line and "training.rounds" in line and "training.lr" in line
    assert not (tmp_path / "r").exists()


def test_config_unknown_key_and_bad_toml(tmp_path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[training]\nroundz = 3\n")
    res = _fedlab("simulate", "--config", str(cfg), cwd=tmp_path)
    assert res.returncode == 2 and "training.roundz" in res.stderr
    cfg.write_text("[training\n")
    res = _fedlab("simulate", "--config", str(cfg), cwd=tmp_path)
    assert res.returncode == 2 and "not valid TOML" in res.stderr


def test_corrupt_data_file_is_named(tmp_path) -> None:
    data = tmp_path / "oc"
    data.mkdir()
    for name in ("amazon", "Caltech10", "dslr", "webcam"):
        (data / f"{name}_SURF_L10.mat").write_bytes(b"this is not a MATLAB file")
    res = _fedlab("simulate", "--federation", "office-caltech10", "--data-dir", str(data), cwd=tmp_path)
    assert res.returncode == 2
    assert "_SURF_L10.mat" in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["simulate", "audit", "report"])
def test_help_of_every_command(tmp_path, command: str) -> None:
    res = _fedlab(command, "--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"Usage: fedlab {command}" in res.stdout.replace("python -m fedlab.cli", "fedlab")
