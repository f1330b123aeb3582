"""The CUDA path end to end in a few minutes, with a table a person can paste into a note.

Three jobs, each run on `cuda` and again on the CPU with the same config and seed:

1. FedKA on Digit-Five (the reference CNN, fedka2022 protocol, shortened), fedlab's in-process
   engine;
2. the same federation with 4 clients per domain trained in parallel Ray actors that share one GPU
   (`gpus_per_client = 0.25`);
3. DP-SGD (Opacus, client mode) on the embedded `digits` federation.

Printed per job: wall time, peak GPU memory (torch's allocator, this process; Ray actors run in
other processes, so for job 2 it is read from nvidia-smi while the job runs), final target
accuracy on cuda and on the CPU. GPU and CPU accuracies are not expected to be bit-identical
(cuDNN kernels differ), only close.

    python scripts/gpu_check.py --data-dir ../shared/data [--rounds 5] [--skip-cpu] [--out DIR]

Exits 2 with one line when CUDA is not available (nothing is run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")


def jobs(data_dir: str, rounds: int) -> dict[str, dict]:
    """The three jobs as config overrides (device added per run)."""
    digits = {
        "protocol": "fedka2022",
        "federation.name": "digit-five",
        "federation.data_dir": str(Path(data_dir) / "digits"),
        "federation.max_per_domain": 1000,
        "training.strategy": "fedka",
        "training.rounds": rounds,
        "seed": 0,
    }
    return {
        "fedka digit-five (inprocess)": digits,
        "fedka digit-five, 4 clients/domain on Ray, 0.25 GPU each": {
            **digits,
            "federation.clients_per_domain": 4,
            "engine": "ray",
            "gpus_per_client": 0.25,
            "cpus_per_client": 1,
        },
        "DP-SGD digits (client mode, eps 3)": {
            "federation.name": "digits",
            "training.strategy": "fedavg",
            "training.rounds": rounds,
            "dp.enabled": True,
            "dp.mode": "client",
            "dp.target_epsilon": 3.0,
            "seed": 0,
        },
    }


class SmiPeak:
    """Peak GPU memory used on the device, polled from nvidia-smi (covers other processes)."""

    def __init__(self) -> None:
        self.peak_mib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout
                self.peak_mib = max(self.peak_mib, max(int(v) for v in out.split() if v.isdigit()))
            except (OSError, ValueError, subprocess.TimeoutExpired):
                return  # no nvidia-smi: the column says "-"
            self._stop.wait(0.5)

    def __enter__(self) -> SmiPeak:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def run_one(overrides: dict, device: str, out: Path) -> tuple[float, float, float, float]:
    """(seconds, torch peak MiB, nvidia-smi peak MiB, final target accuracy) of one run."""
    import torch

    from fedlab.config import load_simulation_config
    from fedlab.runs.simulate import simulate

    cfg = load_simulation_config(None, {**overrides, "device": device})
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    with SmiPeak() as smi:
        result = simulate(cfg, out=out)
    seconds = time.perf_counter() - started
    torch_mib = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else float("nan")
    return seconds, torch_mib, float(smi.peak_mib or "nan"), float(result.summary["final_target_acc"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip-cpu", action="store_true", help="cuda runs only (no accuracy comparison)")
    ap.add_argument("--out", default="", help="keep run directories here (default: a temporary folder)")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("error: CUDA is not available (torch.cuda.is_available() is False); nothing was run")
        return 2
    if not (Path(args.data_dir) / "digits").is_dir():
        print(f"error: {Path(args.data_dir) / 'digits'} not found (Digit-Five; see --data-dir)")
        return 2
    print(f"GPU: {torch.cuda.get_device_name(0)} | torch {torch.__version__} | CUDA {torch.version.cuda}")
    base = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="fedlab-gpu-check-"))
    rows = []
    for i, (name, overrides) in enumerate(jobs(args.data_dir, args.rounds).items()):
        gpu = run_one(overrides, "cuda", base / f"job{i}-cuda")
        cpu = (float("nan"),) * 4 if args.skip_cpu else run_one(overrides, "cpu", base / f"job{i}-cpu")
        rows.append((name, gpu, cpu))
    columns = ["cuda s", "cpu s", "torch peak MiB", "nvidia-smi peak MiB", "acc cuda", "acc cpu"]
    print(f"| job ({args.rounds} rounds) | " + " | ".join(columns) + " |")
    print("|" + "---|" * 7)
    for name, g, c in rows:
        print(
            f"| {name} | {g[0]:.1f} | {c[0]:.1f} | {g[1]:.0f} | {g[2]:.0f} | {100 * g[3]:.1f} % | "
            f"{100 * c[3]:.1f} % |"
        )
    print(f"run directories: {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
