#!/usr/bin/env bash
# Refresh the pinned dependency set in requirements/ (versions + sha256 hashes).
#
#   bash scripts/lock.sh                  # keep today's pins, add/drop what pyproject.toml changed
#   bash scripts/lock.sh --upgrade        # move everything to the newest allowed versions
#   bash scripts/lock.sh --upgrade-package numpy   # extra args go to every `uv pip compile`
#
# pyproject.toml keeps the ranges (for people who `pip install fedlab` into their own
# environment); requirements/ is the one tested set that scripts/setup.sh, CI (.ci/run)
# and the container images install, always with `pip install --require-hashes --no-deps`:
#   dev.txt      runtime + every extra (dev, ...)  (scripts/setup.sh dev, CI)
#   runtime.txt  runtime, Flower's simulation   (scripts/setup.sh)
#   image.txt    runtime without Ray            (scripts/container-build.sh: a deployment never simulates)
# runtime.txt and image.txt are resolved *within* dev.txt (-c), so a package has the same
# version in all three. Torch is left out of every file (it is pinned by FEDLAB_TORCH_VERSION
# and installed first, so a CPU or CUDA build can be chosen), but its dependencies are pinned
# as the CPU build declares them. Resolution targets Linux x86_64, CPython 3.11 (CI, images).
#
# Where the CPU torch wheel's metadata comes from: FEDLAB_TORCH_FIND_LINKS (a folder or page
# with torch-<version>+cpu wheels), else PyTorch's CPU index. An added optional/dev dependency
# in pyproject.toml (e.g. xgboost) only needs this script re-run; tests/test_lockfile.py
# fails until it is.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-$(command -v uv || echo .venv/bin/uv)}
TORCH_VERSION=${FEDLAB_TORCH_VERSION:-2.13.0}
export UV_NATIVE_TLS=${UV_NATIVE_TLS:-1}  # use the system's CA store (proxies with their own CA)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in dev runtime image; do  # existing pins are uv's preferences (unless --upgrade)
  if [ -f "requirements/$f.txt" ]; then cp "requirements/$f.txt" "$tmp/$f.txt"; fi
done
echo "torch==${TORCH_VERSION}+cpu" >"$tmp/torch.txt"
if [ -n "${FEDLAB_TORCH_FIND_LINKS:-}" ]; then
  torch_src=(--find-links "$FEDLAB_TORCH_FIND_LINKS")
else
  torch_src=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
fi
common=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes
        --no-emit-package torch --custom-compile-command "bash scripts/lock.sh" "${torch_src[@]}")

mkdir -p requirements
"$UV" pip compile pyproject.toml --all-extras -c "$tmp/torch.txt" "${common[@]}" "$@" -o "$tmp/dev.txt"
cp "$tmp/dev.txt" requirements/dev.txt
"$UV" pip compile pyproject.toml -c requirements/dev.txt -c "$tmp/torch.txt" "${common[@]}" "$@" \
  -o "$tmp/runtime.txt"
# The image: the same runtime dependencies with flwr's `simulation` extra (Ray) dropped.
python3 - >"$tmp/image.in" <<'EOF'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print("\n".join(re.sub(r"^flwr\[simulation\]", "flwr", d) for d in deps))
EOF
"$UV" pip compile - -c requirements/dev.txt -c "$tmp/torch.txt" "${common[@]}" "$@" \
  -o "$tmp/image.txt" <"$tmp/image.in"
cp "$tmp/runtime.txt" requirements/runtime.txt
cp "$tmp/image.txt" requirements/image.txt
for f in requirements/dev.txt requirements/runtime.txt requirements/image.txt; do
  echo "$f: $(grep -c '^[a-z0-9]' "$f") packages"
done
