#!/usr/bin/env bash
# Build fedlab's deployment images offline: fedlab-superlink:<version> (SuperLink + ServerApp)
# and fedlab-supernode:<version> (SuperNode + ClientApp), from docker/Dockerfile.
#
#   bash scripts/container-build.sh                         # podman, Debian base made by debootstrap
#   bash scripts/container-build.sh --engine docker --base python:3.11-slim
#   bash scripts/container-build.sh --torch-variant cu126 --torch-index https://download.pytorch.org/whl/cu126
#
# Network is needed on the host only, and only for what is not cached yet: the wheelhouse
# (pip, pinned and hash-checked by requirements/image.txt) and the debootstrap base (Debian
# mirror). The image build itself runs with --network none. Everything lands under
# .container/ (git-ignored): rootfs-bookworm/, wheelhouse-<variant>/, context-<variant>/.
#
# Options:
#   --engine podman|docker     default: podman if installed, else docker
#   --base debootstrap|IMAGE   default: debootstrap (imported as fedlab-base:bookworm);
#                              IMAGE is e.g. python:3.11-slim (must be pullable or present)
#   --torch-variant cpu|cuXYZ  default: cpu; tags get a -cuXYZ suffix for CUDA
#   --torch-index URL          where pip finds the torch wheel (default: pip's configuration;
#                              elsewhere use https://download.pytorch.org/whl/<variant>)
#   --no-cache                 rebuild every layer (for cold-build timings)
#   --mirror URL               Debian mirror for debootstrap (default: deb.debian.org)
# Environment: PYTHON (host interpreter with pip; default .venv/bin/python or python3),
# CONTAINERS_CONF (podman; default docker/podman-containers.conf when runc is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ENGINE="" BASE=debootstrap VARIANT=cpu TORCH_INDEX="" NO_CACHE=() MIRROR=http://deb.debian.org/debian
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) ENGINE=${2:?}; shift 2 ;;
    --base) BASE=${2:?}; shift 2 ;;
    --torch-variant) VARIANT=${2:?}; shift 2 ;;
    --torch-index) TORCH_INDEX=${2:?}; shift 2 ;;
    --no-cache) NO_CACHE=(--no-cache); shift ;;
    --mirror) MIRROR=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$ENGINE" ]; then
  if command -v podman >/dev/null; then ENGINE=podman; else ENGINE=docker; fi
fi
case "$ENGINE" in podman|docker) ;; *) echo "error: --engine $ENGINE: expected podman or docker" >&2; exit 2 ;; esac
command -v "$ENGINE" >/dev/null || { echo "error: --engine $ENGINE: not installed" >&2; exit 2; }
case "$VARIANT" in cpu|cu[0-9]*) ;; *) echo "error: --torch-variant $VARIANT: expected cpu or cuXYZ" >&2; exit 2 ;; esac
if [ "$ENGINE" = podman ] && [ -z "${CONTAINERS_CONF:-}" ] && command -v runc >/dev/null; then
  export CONTAINERS_CONF=$ROOT/docker/podman-containers.conf
fi

PY=${PYTHON:-}
[ -n "$PY" ] || { [ -x .venv/bin/python ] && PY=.venv/bin/python || PY=python3; }
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
TORCH_VERSION=${FEDLAB_TORCH_VERSION:-2.13.0}
SUFFIX=""; [ "$VARIANT" = cpu ] || SUFFIX="-$VARIANT"
TAG="$VERSION$SUFFIX"
WORK=.container
WHEELS=$WORK/wheelhouse-$VARIANT
CTX=$WORK/context-$VARIANT
mkdir -p "$WORK"
now() { date +%s.%N; }
secs() { "$PY" -c "print(f'{$2 - $1:.1f}')"; }
T0=$(now)

# -- 1. wheelhouse (host, network): the pinned set + torch + fedlab's own wheel ------------
stamp=$(cat requirements/image.txt pyproject.toml | sha256sum | cut -c1-16)-$TORCH_VERSION-$VARIANT
if [ "$(cat "$WHEELS/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "[build] wheelhouse $WHEELS (pip, hash-checked against requirements/image.txt)"
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  "$PY" -m pip wheel -q --require-hashes --no-deps -r requirements/image.txt -w "$WHEELS" 2>&1 \
    | { grep -v "is ignored: it is neither" || true; }
  torch_args=(); [ -n "$TORCH_INDEX" ] && torch_args=(--index-url "$TORCH_INDEX")
  "$PY" -m pip download -q --no-deps --only-binary :all: "${torch_args[@]}" \
    --python-version 3.11 --platform manylinux_2_28_x86_64 "torch==$TORCH_VERSION" -d "$WHEELS" 2>&1 \
    | { grep -v "is ignored: it is neither" || true; }
  stamp_ok=1
else
  echo "[build] wheelhouse $WHEELS is up to date"
  stamp_ok=0
fi
TORCH_WHEEL=$(cd "$WHEELS" && ls torch-"$TORCH_VERSION"*.whl 2>/dev/null | head -1 || true)
[ -n "$TORCH_WHEEL" ] || { echo "error: no torch $TORCH_VERSION wheel in $WHEELS (--torch-index?)" >&2; exit 1; }
case "$VARIANT:$TORCH_WHEEL" in
  cpu:*+cpu-*) ;;
  cpu:*) echo "error: $TORCH_WHEEL is not a CPU build (it pulls CUDA); pass --torch-index https://download.pytorch.org/whl/cpu" >&2; exit 1 ;;
  *:*+"$VARIANT"-*) ;;
  *) echo "error: $TORCH_WHEEL is not a $VARIANT build; pass --torch-index https://download.pytorch.org/whl/$VARIANT" >&2; exit 1 ;;
esac
# fedlab's wheel, without flwr's `simulation` extra (Ray): a deployment never simulates.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
"$PY" - "$src" <<'EOF'
import shutil, sys
skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
for item in ("fedlab", "clients", "server", "audits"):
    shutil.copytree(item, f"{sys.argv[1]}/{item}", ignore=skip)
for item in ("pyproject.toml", "README.md", "NOTICE"):
    shutil.copy(item, sys.argv[1])
EOF
sed -i 's/"flwr\[simulation\]==/"flwr==/' "$src/pyproject.toml"
# What each install layer depends on, passed as build args so that a change invalidates the
# layer cache (a bind-mounted wheelhouse is not part of every engine's cache key).
SRC_SHA=$(cd "$src" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
DEPS_SHA=$(cat requirements/image.txt "$WHEELS"/torch-*.whl | sha256sum | cut -c1-16)
if [ "$(cat "$WHEELS/.fedlab-src" 2>/dev/null)" != "$SRC_SHA" ] || ! ls "$WHEELS"/fedlab-*.whl >/dev/null 2>&1; then
  rm -f "$WHEELS"/fedlab-*.whl
  "$PY" -m pip wheel -q --no-deps "$src" -w "$WHEELS" >"$WORK/fedlab-wheel.log" 2>&1 \
    || { tail -20 "$WORK/fedlab-wheel.log" >&2; echo "error: building fedlab's wheel failed" >&2; exit 1; }
  echo "$SRC_SHA" >"$WHEELS/.fedlab-src"
fi
if [ "$stamp_ok" = 1 ]; then echo "$stamp" >"$WHEELS/.stamp"; fi
T1=$(now)
echo "[build] wheelhouse ready: $(ls "$WHEELS"/*.whl | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1) ($(secs "$T0" "$T1") s)"

# -- 2. base image ---------------------------------------------------------------------
if [ "$BASE" = debootstrap ]; then
  BASE_IMAGE=fedlab-base:bookworm
  if ! "$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    rootfs=$WORK/rootfs-bookworm
    if [ ! -x "$rootfs/usr/bin/python3" ]; then
      command -v debootstrap >/dev/null || { echo "error: debootstrap not installed (apt-get install debootstrap)" >&2; exit 1; }
      echo "[build] debootstrap bookworm -> $rootfs"
      rm -rf "$rootfs"
      debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -5 "$WORK/debootstrap.log" >&2; exit 1; }
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    echo "[build] importing $rootfs as $BASE_IMAGE"
    tar -C "$rootfs" -c . | "$ENGINE" import - "$BASE_IMAGE" >"$WORK/import.log" 2>&1
  fi
else
  BASE_IMAGE=$BASE
  if ! "$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    "$ENGINE" pull "$BASE_IMAGE" || { echo "error: cannot pull $BASE_IMAGE (no registry reachable?); use --base debootstrap" >&2; exit 1; }
  fi
fi
T2=$(now)

# -- 3. build context: only the wheels and the lock ----------------------------------------
rm -rf "$CTX" && mkdir -p "$CTX/wheels"
cp -l "$WHEELS"/*.whl "$CTX/wheels/" 2>/dev/null || cp "$WHEELS"/*.whl "$CTX/wheels/"
cp requirements/image.txt "$CTX/image.txt"

# -- 4. the two images (no network) ----------------------------------------------------------
build_args=(--network none -f docker/Dockerfile --build-arg "BASE=$BASE_IMAGE"
            --build-arg "FEDLAB_VERSION=$VERSION" --build-arg "TORCH_WHEEL=$TORCH_WHEEL"
            --build-arg "DEPS_SHA=$DEPS_SHA" --build-arg "SRC_SHA=$SRC_SHA" "${NO_CACHE[@]}")
[ "$ENGINE" = podman ] && build_args+=(--layers)
[ "$ENGINE" = docker ] && export DOCKER_BUILDKIT=1
for role in superlink supernode; do
  echo "[build] fedlab-$role:$TAG ($ENGINE, base $BASE_IMAGE)"
  "$ENGINE" build "${build_args[@]}" --target "$role" -t "fedlab-$role:$TAG" "$CTX" >"$WORK/build-$role.log" 2>&1 \
    || { tail -20 "$WORK/build-$role.log" >&2; echo "error: building fedlab-$role failed; log: $WORK/build-$role.log" >&2; exit 1; }
done
T3=$(now)

# -- 5. smoke test: non-root, versions, entry points -----------------------------------------
for role in superlink supernode; do
  out=$("$ENGINE" run --rm --network none --entrypoint python "fedlab-$role:$TAG" -c \
    "import os, fedlab, flwr, torch, server.app, clients.app; print(os.getuid(), fedlab.__version__, flwr.__version__, torch.__version__)")
  read -r uid v_fedlab v_flwr v_torch <<<"$out"
  [ "$uid" != 0 ] || { echo "error: fedlab-$role runs as root" >&2; exit 1; }
  [ "$v_fedlab" = "$VERSION" ] || { echo "error: fedlab-$role has fedlab $v_fedlab, expected $VERSION" >&2; exit 1; }
  "$ENGINE" run --rm --network none "fedlab-$role:$TAG" --help >/dev/null 2>&1 \
    || { echo "error: fedlab-$role:$TAG --help failed" >&2; exit 1; }
  size=$("$ENGINE" image inspect "fedlab-$role:$TAG" --format '{{.Size}}')
  echo "[build] fedlab-$role:$TAG  uid $uid  fedlab $v_fedlab  flwr $v_flwr  torch $v_torch  $((size / 1000000)) MB"
done
echo "[build] times: wheelhouse $(secs "$T0" "$T1") s, base $(secs "$T1" "$T2") s, images $(secs "$T2" "$T3") s, total $(secs "$T0" "$(now)") s"
