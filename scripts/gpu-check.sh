#!/usr/bin/env bash
# The CUDA path end to end in a few minutes (FedKA on Digit-Five on cuda; 4 clients per domain
# sharing one GPU through Ray, --gpus-per-client 0.25; DP-SGD on cuda), each compared with the
# same run on the CPU; prints a table (wall time, GPU memory, accuracy). See scripts/gpu_check.py.
#   bash scripts/gpu-check.sh [--data-dir ../shared/data] [--rounds 5] [--skip-cpu]
# Needs a CUDA build of torch in .venv (README "GPU"); exits 2 with one line without CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
exec .venv/bin/python scripts/gpu_check.py "$@"
