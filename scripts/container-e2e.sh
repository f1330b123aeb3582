#!/usr/bin/env bash
# A real container deployment of fedlab, end to end, cleaned up afterwards.
#
#   bash scripts/container-build.sh        # once: fedlab-superlink / fedlab-supernode images
#   bash scripts/container-e2e.sh          # 3 FedKA rounds, SuperLink + 2 SuperNode containers
#   bash scripts/container-e2e.sh --engine docker --rounds 5 --require-all-nodes
#
# What it does (the same services, flags and mounts as docker/compose.yml):
#  1. key material with `fedlab deploy certs` (CA + SuperLink certificate, SAN `superlink`)
#     and `fedlab deploy keys` (one ECDSA key pair per SuperNode);
#  2. each SuperNode's own data: its digits domain exported to data/supernode-N/<domain>.npz;
#  3. two private networks; the SuperLink container (TLS, SuperNode authentication on) with
#     its port published on 127.0.0.1 only, for the `flwr` CLI on this host, and the Fleet
#     gate, the only address the SuperNodes' network reaches (Fleet API only, 403 otherwise);
#  4. registers both public keys (`flwr supernode register`), then starts 2 SuperNode
#     containers, each mounting read-only only the CA certificate, its own private key and
#     its own data folder;
#  5. `flwr run` of this checkout (FedKA, 3 rounds by default), streamed;
#  6. copies the run directory out of the SuperLink container into --out, prints the
#     per-round report (replies received vs expected, lost nodes, target accuracy);
#  7. removes every container and the network it created, on success, failure or Ctrl-C.
# Options:
#   --engine podman|docker   default: podman if installed, else docker
#   --rounds N (3)  --strategy NAME (fedka)  --target DOMAIN (colour)
#   --domains D1,D2[,...] (original,rotated): one per SuperNode  --local-steps N (10)  --seed N (0)
#   --nodes N (the number of --domains; fewer domains are reused in turn)
#   --config FILE [--data-dir DIR]  any federation with every setting of a fedlab config: one
#                            SuperNode per client domain of the config (identity by domain), DIR
#                            mounted read-only at /data in the SuperNodes and the SuperLink (the
#                            target); the flags above override the config where given
#   --out DIR (runs/container-e2e)  --timeout S (1200, for `flwr run`)
#   --network bridge|host    bridge (default): a private network + published port; host: the
#                            host's network (for engines that cannot create networks)
#   --require-all-nodes      exit 3 if any SuperNode missed a round
#   --stop-node N@R          fault injection: kill supernode-N's container once round R's
#                            training replies are in (shows the lost-node report)
#   --round-timeout S (300)  seconds the ServerApp waits for replies in a round
#   --keep                   keep the work folder (keys, logs) for inspection
# Exit codes: 0 ok, 1 failed, 2 bad usage / missing images, 3 a node was lost (--require-all-nodes).
# Environment: PYTHON (host interpreter with fedlab + flwr; default .venv/bin/python),
# CONTAINERS_CONF (podman; default docker/podman-containers.conf when runc is installed).
set -euo pipefail
# Ctrl-C must stop the run and remove everything whatever the parent did with SIGINT: a
# non-interactive bash cannot trap a signal that was ignored when it started (CI runners and
# scripts often start children that way), so restart once with INT and TERM at their defaults
# (HUP is left alone: `nohup` users mean it).
if [ -z "${FEDLAB_E2E_SIGNALS:-}" ]; then
  export FEDLAB_E2E_SIGNALS=default
  if env --default-signal=INT true 2>/dev/null; then
    exec env --default-signal=INT,TERM bash "$0" "$@"
  fi
  exec python3 -c 'import os, signal, sys
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, signal.SIG_DFL)
os.execvp("bash", ["bash", *sys.argv[1:]])' "$0" "$@"
fi
cd "$(dirname "$0")/.."
ROOT=$PWD

ENGINE="" ROUNDS="" STRATEGY="" TARGET="" DOMAINS="" LOCAL_STEPS="" SEED="" CONFIG="" DATA_DIR=""
NODES="" OUT=runs/container-e2e TIMEOUT=1200 NETWORK=bridge REQUIRE_ALL=0 KEEP=0 STOP_NODE="" ROUND_TIMEOUT=300
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) ENGINE=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --strategy) STRATEGY=${2:?}; shift 2 ;;
    --target) TARGET=${2:?}; shift 2 ;;
    --domains) DOMAINS=${2:?}; shift 2 ;;
    --nodes) NODES=${2:?}; shift 2 ;;
    --local-steps) LOCAL_STEPS=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    --config) CONFIG=${2:?}; shift 2 ;;
    --data-dir) DATA_DIR=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --network) NETWORK=${2:?}; shift 2 ;;
    --require-all-nodes) REQUIRE_ALL=1; shift ;;
    --keep) KEEP=1; shift ;;
    --stop-node) STOP_NODE=${2:?}; shift 2 ;;
    --round-timeout) ROUND_TIMEOUT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,41p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$ENGINE" ]; then
  if command -v podman >/dev/null; then ENGINE=podman; else ENGINE=docker; fi
fi
case "$ENGINE" in podman|docker) ;; *) echo "error: --engine $ENGINE: expected podman or docker" >&2; exit 2 ;; esac
case "$NETWORK" in bridge|host) ;; *) echo "error: --network $NETWORK: expected bridge or host" >&2; exit 2 ;; esac
for n in "$ROUNDS" "$LOCAL_STEPS" "$SEED" "$TIMEOUT" "$ROUND_TIMEOUT"; do
  [[ -z "$n" || "$n" =~ ^[0-9]+$ ]] || { echo "error: expected a whole number, got '$n'" >&2; exit 2; }
done
if [ -n "$CONFIG" ]; then  # the config decides; the flags given override it; domains: its clients'
  [ -f "$CONFIG" ] || { echo "error: --config $CONFIG: not a file" >&2; exit 2; }
  [ -z "$DATA_DIR" ] || [ -d "$DATA_DIR" ] || { echo "error: --data-dir $DATA_DIR: not a folder" >&2; exit 2; }
  [ -z "$DOMAINS" ] || { echo "error: --domains: with --config the nodes are the config's clients" >&2; exit 2; }
  DOMAINS=config
else
  [ -z "$DATA_DIR" ] || { echo "error: --data-dir needs --config (the digits run embeds its data)" >&2; exit 2; }
  ROUNDS=${ROUNDS:-3} STRATEGY=${STRATEGY:-fedka} TARGET=${TARGET:-colour} DOMAINS=${DOMAINS:-original,rotated}
  LOCAL_STEPS=${LOCAL_STEPS:-10} SEED=${SEED:-0}
fi
IFS=, read -r -a GIVEN_DOMAINS <<<"$DOMAINS"
[ "${#GIVEN_DOMAINS[@]}" -ge 1 ] || { echo "error: --domains '$DOMAINS': expected at least one domain" >&2; exit 2; }
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
if [ -n "$CONFIG" ]; then
  # what `fedlab deploy local --config` submits (fedlab.deploy.from_config): the node domains, and
  # the whole config as one run-config value, its data folder the containers' /data mount
  CONFIG_OUT=$(mktemp -d "${TMPDIR:-/tmp}/fedlab-e2e-config.XXXXXX")
  "$PY" - "$CONFIG" "$DATA_DIR" "$CONFIG_OUT" "$ROUNDS" "$LOCAL_STEPS" "$SEED" "$STRATEGY" "$TARGET" <<'EOF' \
    || { rm -rf "$CONFIG_OUT"; exit 2; }
import sys
from pathlib import Path

from fedlab.config import load_simulation_config
from fedlab.core.errors import FedlabError
from fedlab.deploy.from_config import config_domains, whole_config

config, data_dir, out, rounds, steps, seed, strategy, target = sys.argv[1:]
flags = {"training.rounds": rounds, "training.local_steps": steps, "seed": seed,
         "training.strategy": strategy, "training.target": target, "federation.data_dir": data_dir}
try:
    cfg = load_simulation_config(config, {k: v for k, v in flags.items() if v})
    domains = config_domains(cfg)
    data = Path(cfg.federation.data_dir).resolve() if cfg.federation.data_dir else None
    value = whole_config(cfg, "/home/fedlab/runs", data, server_data_dir="/data" if data else "")
except FedlabError as exc:
    sys.exit(f"error: {exc}")
Path(out, "domains").write_text("\n".join(domains) + "\n")
Path(out, "data-dir").write_text(str(data or ""))
Path(out, "fedlab-config").write_text(value)
Path(out, "what").write_text(f"{cfg.training.strategy}, {cfg.training.rounds} rounds, {cfg.federation.name}")
EOF
  mapfile -t GIVEN_DOMAINS <"$CONFIG_OUT/domains"
  DATA_DIR=$(cat "$CONFIG_OUT/data-dir")
  FEDLAB_CONFIG=$(cat "$CONFIG_OUT/fedlab-config")
  WHAT=$(cat "$CONFIG_OUT/what")
  rm -rf "$CONFIG_OUT"
else
  WHAT="$STRATEGY, $ROUNDS rounds, digits, target $TARGET"
fi
NODES=${NODES:-${#GIVEN_DOMAINS[@]}}
[[ "$NODES" =~ ^[1-9][0-9]*$ ]] || { echo "error: --nodes $NODES: expected a whole number >= 1" >&2; exit 2; }
NODE_DOMAINS=()
for ((i = 0; i < NODES; i++)); do NODE_DOMAINS+=("${GIVEN_DOMAINS[$((i % ${#GIVEN_DOMAINS[@]}))]}"); done
if [ -n "$STOP_NODE" ] && { ! [[ "$STOP_NODE" =~ ^[0-9]+@[0-9]+$ ]] || [ "${STOP_NODE%@*}" -lt 1 ] \
    || [ "${STOP_NODE%@*}" -gt "$NODES" ]; }; then
  echo "error: --stop-node $STOP_NODE: expected N@R with N in 1..$NODES and R a round" >&2; exit 2
fi
command -v "$ENGINE" >/dev/null || { echo "error: --engine $ENGINE: not installed" >&2; exit 2; }
if [ "$ENGINE" = podman ] && [ -z "${CONTAINERS_CONF:-}" ] && command -v runc >/dev/null; then
  export CONTAINERS_CONF=$ROOT/docker/podman-containers.conf
fi
FLWR=$(dirname "$PY")/flwr
[ -x "$FLWR" ] || FLWR=$(command -v flwr || true)
[ -n "$FLWR" ] || { echo "error: the flwr CLI is not installed next to $PY (run scripts/setup.sh)" >&2; exit 2; }
export FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1 FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')

# -- what runs: the same as docker/compose.yml (tests/test_container_files.py checks it) ----
LINK_IMAGE=fedlab-superlink:$VERSION
NODE_IMAGE=fedlab-supernode:$VERSION
LINK_PORT=8000
SUPERLINK_ARGS=(
  --host=0.0.0.0
  --port=$LINK_PORT
  --ssl-ca-certfile=/certs/ca.crt
  --ssl-certfile=/certs/server.pem
  --ssl-keyfile=/certs/server.key
  --enable-supernode-auth
  --disable-runtime-dependency-installation
  --database=/home/fedlab/superlink.db
)
# The Fleet gate (fedlab.deploy.fleet_gate): the only SuperLink address the SuperNodes reach. It
# serves the Fleet API and /health and answers 403 to the Control API, which stays on the
# SuperLink's own port, published on 127.0.0.1 for the operator's `flwr` CLI.
GATE_PORT=9092
GATE_ARGS=(
  -m
  fedlab.deploy.fleet_gate
  --listen=0.0.0.0:$GATE_PORT
  --superlink=superlink:$LINK_PORT
  --certfile=/certs/server.pem
  --keyfile=/certs/server.key
  --ca=/certs/ca.crt
)
supernode_args() {  # $1: client id (the simulation's, by domain), $2: domain, $3: SuperLink address
  SUPERNODE_ARGS=(
    --superlink=$3
    --root-certificates=/certs/ca.crt
    --auth-supernode-private-key=/keys/auth.key
    --max-retries=5
    --node-config="domain='$2' client-id=$1 data-path='/data/$2.npz'"
  )
}

for image in "$LINK_IMAGE" "$NODE_IMAGE"; do
  "$ENGINE" image inspect "$image" >/dev/null 2>&1 \
    || { echo "error: image $image not found; build it: bash scripts/container-build.sh --engine $ENGINE" >&2; exit 2; }
done

PREFIX=fedlab-e2e-$$
NET=$PREFIX-net        # SuperLink + Fleet gate
FLEET_NET=$PREFIX-fleet  # Fleet gate + SuperNodes: no route to the SuperLink itself
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fedlab-e2e.XXXXXX")
chmod 700 "$WORK"
CONTAINERS=()
NETWORK_MADE=0
CLEANED=0
WATCHER="" RUN_PID="" FOLLOW_PID=""
T0=$(date +%s.%N)
log() { echo "[e2e] $*" >&2; }
engine() {  # the engine, minus podman's harmless "failed to connect to syslog" line
  "$ENGINE" "$@" 2> >(grep -v "failed to connect to syslog" >&2)
}

cleanup() {
  local code=$?
  [ "$CLEANED" = 1 ] && return
  CLEANED=1
  trap '' INT TERM HUP
  for pid in "$WATCHER" "$RUN_PID" "$FOLLOW_PID"; do  # only what this script started
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  done
  # within ~5 s in all: every container's log at once, then one forced removal of them all
  local log_pids=()
  for c in "${CONTAINERS[@]}"; do
    timeout 3 "$ENGINE" logs --timestamps "$c" >"$WORK/logs/${c#"$PREFIX"-}.log" 2>&1 &
    log_pids+=($!)
  done
  [ "${#log_pids[@]}" = 0 ] || wait "${log_pids[@]}" 2>/dev/null || true
  if [ "${#CONTAINERS[@]}" -gt 0 ]; then
    "$ENGINE" rm -f -t 1 "${CONTAINERS[@]}" >/dev/null 2>&1 || "$ENGINE" rm -f "${CONTAINERS[@]}" >/dev/null 2>&1 || true
  fi
  if [ "$NETWORK_MADE" = 1 ]; then "$ENGINE" network rm "$NET" "$FLEET_NET" >/dev/null 2>&1 || true; fi
  local left
  left=$("$ENGINE" ps -a --format '{{.Names}}' 2>/dev/null | grep -c "^$PREFIX-" || true)
  [ "$left" = 0 ] || log "WARNING: $left container(s) named $PREFIX-* still exist"
  if [ "$KEEP" = 1 ]; then log "kept $WORK (keys, logs)"; else rm -rf "$WORK"; fi
  log "removed containers: ${CONTAINERS[*]:-none}; network: $([ "$NETWORK_MADE" = 1 ] && echo "$NET $FLEET_NET" || echo none)"
  return "$code"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP
# A step that fails without a message of its own (set -e) still says which one it was; inside
# the `set +e` stretches a failure is handled there, so nothing is said.
trap 'e2e_rc=$?; if [[ $- == *e* ]]; then log "error: line $LINENO: $BASH_COMMAND (exit $e2e_rc)"; fi' ERR

wait_for_log() {  # $1 container, $2 regex, $3 seconds
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    if "$ENGINE" logs "$1" 2>&1 | grep -qE "$2"; then return 0; fi
    if [ "$("$ENGINE" inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" != true ]; then
      log "$1 exited: $("$ENGINE" logs "$1" 2>&1 | tail -5 | tr '\n' ' ')"; return 1
    fi
    sleep 1
  done
  log "$1: no '$2' within $3 s: $("$ENGINE" logs "$1" 2>&1 | tail -3 | tr '\n' ' ')"
  return 1
}

# -- 1-2. key material and each node's data (host) ----------------------------------------
mkdir -p "$WORK/logs" "$WORK/flwr-home"
"$PY" -m fedlab.cli deploy certs --out "$WORK/certs" --hostname superlink --hostname fleet-gate >"$WORK/logs/certs.log"
"$PY" -m fedlab.cli deploy keys --nodes "$NODES" --out "$WORK/keys" >"$WORK/logs/keys.log"
[ -n "$CONFIG" ] || "$PY" - "$WORK/data" "$TARGET" "$SEED" "${NODE_DOMAINS[@]}" <<'EOF'
import sys
from pathlib import Path

from clients.local_data import export_domain, partition_for
from fedlab.config.settings import SimulationConfig

out, target, seed, domains = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
cfg = SimulationConfig.model_validate({"seed": seed, "training": {"target": target}})
for i, domain in enumerate(domains, start=1):
    # no client-id: the simulation's client of this domain (its id seeds training, as simulated)
    part = partition_for(cfg, target, {"domain": domain})
    (out / f"supernode-{i}").mkdir(parents=True)
    (out / f"supernode-{i}.id").write_text(str(part.client_id))
    export_domain(out / f"supernode-{i}" / f"{domain}.npz", part)
    print(f"[e2e] supernode-{i}: {domain} ({len(part.y_train)} train / {len(part.y_test)} test)", file=sys.stderr)
EOF
# The images run as uid 10001: hand each container a private copy of what it may read.
stage() {  # $1 source file, $2 dest dir
  mkdir -p "$2" && cp "$1" "$2/"
  if [ "$(id -u)" = 0 ]; then chown -R 10001:10001 "$2"; else chmod 0644 "$2/$(basename "$1")"; fi
}
for f in ca.crt server.pem server.key; do stage "$WORK/certs/$f" "$WORK/mount/superlink/certs"; done
for i in $(seq 1 "$NODES"); do
  stage "$WORK/certs/ca.crt" "$WORK/mount/supernode-$i/certs"
  stage "$WORK/keys/supernode-$i/auth.key" "$WORK/mount/supernode-$i/keys"
  [ -n "$CONFIG" ] && continue  # the operator's --data-dir, mounted read-only as it is
  if [ "$(id -u)" = 0 ]; then chown -R 10001:10001 "$WORK/data/supernode-$i"; else chmod -R a+rX "$WORK/data/supernode-$i"; fi
done

# -- 3. SuperLink ------------------------------------------------------------------------
HOST_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$NETWORK" = bridge ]; then
  NETWORK_MADE=1
  "$ENGINE" network create "$NET" >/dev/null
  "$ENGINE" network create "$FLEET_NET" >/dev/null
  net_link=(--network "$NET" --network-alias superlink -p "127.0.0.1:$HOST_PORT:$LINK_PORT")
  net_node=(--network "$FLEET_NET")
  LINK_ADDR=fleet-gate:$GATE_PORT
else
  LINK_PORT=$HOST_PORT
  SUPERLINK_ARGS[1]=--port=$LINK_PORT
  SUPERLINK_ARGS[0]=--host=127.0.0.1
  GATE_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  GATE_ARGS[2]=--listen=127.0.0.1:$GATE_PORT
  GATE_ARGS[3]=--superlink=127.0.0.1:$LINK_PORT
  net_link=(--network host) net_node=(--network host)
  LINK_ADDR=localhost:$GATE_PORT
fi
CONTAINERS+=("$PREFIX-superlink")
link_data=()  # --config: the ServerApp's target data from the same folder
if [ -n "$CONFIG" ] && [ -n "$DATA_DIR" ]; then link_data=(-v "$DATA_DIR:/data:ro"); fi
engine run -d --name "$PREFIX-superlink" "${net_link[@]}" "${link_data[@]}" \
  -v "$WORK/mount/superlink/certs:/certs:ro" \
  "$LINK_IMAGE" "${SUPERLINK_ARGS[@]}" >/dev/null
wait_for_log "$PREFIX-superlink" "Uvicorn running on https://|Flower Deployment Runtime|Starting Flower SuperLink" 120
"$PY" -c "
import sys, time
from fedlab.deploy.network import check_tls
for _ in range(60):
    try:
        check_tls('127.0.0.1', $HOST_PORT, '$WORK/certs/ca.crt'); break
    except Exception as exc:
        err = exc; time.sleep(1)
else:
    sys.exit(f'error: {err}')
"
log "SuperLink $PREFIX-superlink up (TLS verified with the deployment CA on 127.0.0.1:$HOST_PORT)"
CONTAINERS+=("$PREFIX-fleet-gate")
if [ "$NETWORK" = bridge ]; then gate_net=(--network "$NET"); else gate_net=(--network host); fi
engine run -d --name "$PREFIX-fleet-gate" "${gate_net[@]}" \
  -v "$WORK/mount/superlink/certs:/certs:ro" \
  --entrypoint python "$LINK_IMAGE" "${GATE_ARGS[@]}" >/dev/null
if [ "$NETWORK" = bridge ]; then engine network connect --alias fleet-gate "$FLEET_NET" "$PREFIX-fleet-gate"; fi
wait_for_log "$PREFIX-fleet-gate" "fleet gate on" 60
log "Fleet gate $PREFIX-fleet-gate up: the SuperNodes reach $LINK_ADDR (Fleet API only)"
export FLWR_HOME=$WORK/flwr-home
cat >"$FLWR_HOME/config.toml" <<EOF
[superlink]
default = "fedlab-e2e"

[superlink.fedlab-e2e]
address = "127.0.0.1:$HOST_PORT"
root-certificates = "$WORK/certs/ca.crt"
EOF

# -- 4. register both keys, start the SuperNodes ---------------------------------------------
for i in $(seq 1 "$NODES"); do
  "$FLWR" supernode register "$WORK/keys/supernode-$i/auth.pub" fedlab-e2e >"$WORK/logs/register-$i.log" 2>&1 \
    || { cat "$WORK/logs/register-$i.log" >&2; exit 1; }
  grep -q "registered successfully" "$WORK/logs/register-$i.log" \
    || { echo "error: registering supernode-$i: $(tail -2 "$WORK/logs/register-$i.log")" >&2; exit 1; }
done
for i in $(seq 1 "$NODES"); do
  domain=${NODE_DOMAINS[$((i - 1))]}
  node_data=$WORK/data/supernode-$i
  if [ -n "$CONFIG" ]; then  # identity by domain (the simulation's client id), data from /data
    supernode_args "" "$domain" "$LINK_ADDR"
    SUPERNODE_ARGS[4]="--node-config=domain='$domain'${DATA_DIR:+ data-dir='/data'}"
    node_data=${DATA_DIR:-$WORK/data/supernode-$i}
    mkdir -p "$node_data"
  else
    supernode_args "$(cat "$WORK/data/supernode-$i.id")" "$domain" "$LINK_ADDR"
  fi
  if [ "$NETWORK" = host ]; then  # the nodes share the host's ports: not both on the default 9094
    SUPERNODE_ARGS+=("--port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')")
  fi
  CONTAINERS+=("$PREFIX-supernode-$i")
  engine run -d --name "$PREFIX-supernode-$i" "${net_node[@]}" \
    -v "$WORK/mount/supernode-$i/certs:/certs:ro" \
    -v "$WORK/mount/supernode-$i/keys:/keys:ro" \
    -v "$node_data:/data:ro" \
    "$NODE_IMAGE" "${SUPERNODE_ARGS[@]}" >/dev/null
done
for i in $(seq 1 "$NODES"); do wait_for_log "$PREFIX-supernode-$i" "SuperNode ID:" 120; done
if [ "$NETWORK" = bridge ]; then  # the SuperNodes' network has no route to the Control API
  if engine exec "$PREFIX-supernode-1" python -c "import socket; socket.create_connection(('superlink', $LINK_PORT), 5)" \
      >/dev/null 2>&1; then
    echo "error: supernode-1 reaches the SuperLink's own port (superlink:$LINK_PORT) past the Fleet gate" >&2; exit 1
  fi
  log "supernode-1 cannot reach superlink:$LINK_PORT (Control API); only the gate's Fleet API"
fi
log "$NODES SuperNodes connected (${NODE_DOMAINS[*]}); submitting $WHAT"

# -- 5. the run ------------------------------------------------------------------------------
if [ -n "$CONFIG" ]; then
  RUN_CONFIG="fedlab-config='$FEDLAB_CONFIG' out='/home/fedlab/runs' min-clients=$NODES"
else
  RUN_CONFIG="federation='digits' strategy='$STRATEGY' target='$TARGET' num-server-rounds=$ROUNDS"
  RUN_CONFIG+=" local-steps=$LOCAL_STEPS seed=$SEED out='/home/fedlab/runs' min-clients=$NODES"
fi
RUN_CONFIG+=" round-timeout=$ROUND_TIMEOUT.0"
: >"$WORK/logs/serverapp.log"
if [ -n "$STOP_NODE" ]; then
  (
    while ! grep -q "replies round ${STOP_NODE#*@} train" "$WORK/logs/serverapp.log"; do sleep 1; done
    log "fault injection: killing $PREFIX-supernode-${STOP_NODE%@*} after round ${STOP_NODE#*@}'s training"
    engine kill "$PREFIX-supernode-${STOP_NODE%@*}" >/dev/null
  ) &
  WATCHER=$!
fi
T_RUN=$(date +%s.%N)
# In the background + `wait`, so that Ctrl-C/TERM reach the trap at once (bash runs traps only
# between foreground commands); the log is followed for display until flwr exits.
timeout --foreground "$TIMEOUT" "$FLWR" run "$ROOT" fedlab-e2e --run-config "$RUN_CONFIG" --stream \
  >"$WORK/logs/serverapp.raw" 2>&1 &
RUN_PID=$!
tail -n +1 -F --pid="$RUN_PID" "$WORK/logs/serverapp.raw" 2>/dev/null | sed -u 's/\x1b\[[0-9;]*m//g' \
  | tee "$WORK/logs/serverapp.log" | sed -u 's/^/[serverapp] /' >&2 &
FOLLOW_PID=$!
set +e
wait "$RUN_PID"
rc=$?
wait "$FOLLOW_PID"
set -e
RUN_PID="" FOLLOW_PID=""
T_DONE=$(date +%s.%N)
[ "$rc" = 0 ] || { echo "error: flwr run exited with $rc (124: --timeout $TIMEOUT s)" >&2; exit 1; }
RUN_ID=$(grep -oE "Successfully started run [0-9]+" "$WORK/logs/serverapp.log" | grep -oE "[0-9]+$" | head -1 || true)
RUN_DIR=$(grep -oE "run directory: /home/fedlab/runs/[^ ]+" "$WORK/logs/serverapp.log" | tail -1 | cut -d' ' -f3 || true)
[ -n "$RUN_DIR" ] || { echo "error: the ServerApp did not report a run directory (run ${RUN_ID:-?} failed; see above)" >&2; exit 1; }

# -- 6. copy the run out, report ---------------------------------------------------------------
mkdir -p "$OUT"
"$ENGINE" cp "$PREFIX-superlink:$RUN_DIR" "$OUT/"
LOCAL_RUN=$OUT/$(basename "$RUN_DIR")
for i in $(seq 1 "$NODES"); do "$ENGINE" logs --timestamps "$PREFIX-supernode-$i" >"$WORK/logs/supernode-$i.log" 2>&1; done
log "run ${RUN_ID:-?} finished in $("$PY" -c "print(f'{$T_DONE - $T_RUN:.1f}')") s; run directory copied to $LOCAL_RUN"
report=("$PY" -m fedlab.deploy.rounds "$LOCAL_RUN")
for i in $(seq 1 "$NODES"); do report+=(--node-log "supernode-$i=$WORK/logs/supernode-$i.log"); done
[ "$REQUIRE_ALL" = 1 ] && report+=(--require-all-nodes)
set +e
"${report[@]}"
rc=$?
set -e
log "wall time $("$PY" -c "print(f'{$(date +%s.%N) - $T0:.1f}')") s (key material to report; flwr run $("$PY" -c "print(f'{$T_DONE - $T_RUN:.1f}')") s)"
exit "$rc"
