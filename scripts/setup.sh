#!/usr/bin/env bash
# Set up fedlab in ./.venv on a fresh machine (Python 3.11+).
#   bash scripts/setup.sh        # runtime only
#   bash scripts/setup.sh dev    # + test/bench tools (pytest, hypothesis, ruff, pycanon, anjana)
# Torch: a CPU build by default. For CUDA, install your torch build into .venv first
# (see README "GPU"); an already-installed torch is kept.
# Everything else comes from the pinned, hashed set in requirements/ (dev.txt or runtime.txt;
# refresh with `bash scripts/lock.sh`). FEDLAB_LOCK=0 resolves pyproject's ranges instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install -q "torch==${FEDLAB_TORCH_VERSION:-2.13.0}"
fi
LOCK=requirements/runtime.txt NODEPS=()
[ "${1:-}" = "dev" ] && LOCK=requirements/dev.txt
if [ "${FEDLAB_LOCK:-1}" != "0" ]; then
  python -m pip install -q --require-hashes --no-deps -r "$LOCK"
  NODEPS=(--no-deps)  # the lock holds every dependency: fedlab itself must not pull others
fi
if [ "${1:-}" = "dev" ]; then
  python -m pip install -q "${NODEPS[@]}" -e ".[dev]"
  # Reference implementations the tests/benchmarks compare against. --no-deps: they pin
  # typer==0.15.1 (breaks Flower's `flwr` CLI) and exact pandas/numpy releases.
  python -m pip install -q --no-deps "pycanon==1.0.3" "anjana==1.2.1"
else
  python -m pip install -q "${NODEPS[@]}" -e .
fi
python -c "import fedlab, torch, flwr; print('fedlab', fedlab.__version__, '| torch', torch.__version__, '| flwr', flwr.__version__)"
