"""scripts/gpu_check.py: its jobs are valid configs everywhere; the CUDA run itself only with CUDA."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fedlab.config import load_simulation_config
from fedlab.runs.simulate import check_strategy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import gpu_check  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def test_every_job_is_a_valid_config_on_the_gpu_path() -> None:
    for name, overrides in gpu_check.jobs(str(DATA), rounds=2).items():
        cfg = load_simulation_config(None, {**overrides, "device": "cuda"})  # validated, not run
        check_strategy(cfg)
        assert cfg.training.rounds == 2, name
    ray = next(o for n, o in gpu_check.jobs(str(DATA), 2).items() if "Ray" in n)
    cfg = load_simulation_config(None, ray)
    assert cfg.gpus_per_client == 0.25 and cfg.federation.clients_per_domain == 4


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA answer")
def test_without_cuda_the_check_says_so_in_one_line_and_runs_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--data-dir", str(DATA)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines() == [
        "error: CUDA is not available (torch.cuda.is_available() is False); nothing was run"
    ]


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.skipif(not (DATA / "digits").is_dir(), reason="needs ../shared/data/digits")
def test_the_cuda_path_runs_end_to_end(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--data-dir", str(DATA), "--rounds", "1",
         "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "job" not in line]
    assert len(rows) == 3 and all("nan" not in r.split("|")[6] for r in rows)
