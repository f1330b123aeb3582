"""docker/ and the container scripts agree with each other and with Flower (static, quick).

scripts/container-e2e.sh is what is run for real (slow test: test_container_e2e.py);
docker/compose.yml is what Docker users run. They must start the same images with the same
entry points, flags, mounts and ports, and only flags the installed Flower accepts. The
Dockerfile must build non-root images without keys or data from the pinned wheelhouse.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import flwr
import pytest
import yaml

import fedlab

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
E2E = (ROOT / "scripts" / "container-e2e.sh").read_text(encoding="utf-8")
BUILD = (ROOT / "scripts" / "container-build.sh").read_text(encoding="utf-8")
DOCKERFILE = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
ROLES = {"superlink": "flower-superlink", "supernode": "flower-supernode"}
FLWR_ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def flower_flags() -> dict[str, set[str]]:
    """Flags each Flower component accepts, read from its own --help."""
    out = {}
    for role, command in ROLES.items():
        text = subprocess.run(
            [str(BIN / command), "--help"], capture_output=True, text=True, timeout=60,
            env={**os.environ, **FLWR_ENV}, check=True,
        ).stdout  # fmt: skip
        out[role] = set(re.findall(r"(--[a-z][a-z0-9-]*)", text))
    return out


def _default(text: str) -> str:
    """compose's ${VAR:-default} -> default."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)


def _script_array(name: str) -> list[str]:
    """The elements of a bash array literal NAME=( ... ) in container-e2e.sh (one per line)."""
    m = re.search(rf"^\s*{name}=\(\n(.*?)^\s*\)", E2E, re.M | re.S)
    assert m, f"{name}=( ... ) not found in scripts/container-e2e.sh"
    return [ln.strip() for ln in m.group(1).splitlines() if ln.strip()]


def _flags(args: list[str]) -> dict[str, str]:
    return {a.split("=", 1)[0]: a.split("=", 1)[1] if "=" in a else "" for a in args if a.startswith("--")}


def _service_role(svc: dict) -> str:
    image = _default(svc["image"])
    role, _, tag = image.partition(":")
    assert role in ("fedlab-superlink", "fedlab-supernode") and tag == VERSION, image
    return role.removeprefix("fedlab-")


# -- images ------------------------------------------------------------------------------


def test_dockerfile_targets_entry_points_user_and_no_secrets() -> None:
    targets = dict(re.findall(r"^FROM runtime AS (\w+)\nENTRYPOINT \[\"([^\"]+)\"\]", DOCKERFILE, re.M))
    assert targets == ROLES
    for command in ROLES.values():
        assert (BIN / command).exists(), f"{command} is not a Flower {flwr.__version__} command"
    user = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert user == ["10001:10001"], "both images run as the unprivileged fedlab user"
    assert "useradd --system --uid 10001" in DOCKERFILE
    # Nothing is copied in: wheels are bind-mounted for the install only; keys and data at run time.
    assert not re.search(r"^(COPY|ADD) ", DOCKERFILE, re.M)
    assert "--mount=type=bind,source=wheels,target=/wheels,ro" in DOCKERFILE
    assert re.search(
        r"--no-index --find-links /wheels --require-hashes --no-deps\s*\\\n\s*-r /tmp/image.txt", DOCKERFILE
    )
    assert "ARG BASE=fedlab-base:bookworm" in DOCKERFILE


def test_build_script_tags_what_e2e_and_compose_run(compose: dict) -> None:
    assert fedlab.__version__ == VERSION
    assert '-t "fedlab-$role:$TAG"' in BUILD and "for role in superlink supernode; do" in BUILD
    assert '--target "$role"' in BUILD and "--network none" in BUILD
    assert 'VERSION=$("$PY" -c' in BUILD and 'TAG="$VERSION$SUFFIX"' in BUILD
    assert "LINK_IMAGE=fedlab-superlink:$VERSION" in E2E and "NODE_IMAGE=fedlab-supernode:$VERSION" in E2E
    for svc in compose["services"].values():
        _service_role(svc)  # fedlab-superlink/-supernode tagged with pyproject's version
        assert "build" not in svc, "images come from scripts/container-build.sh (offline)"
    for engine in ("--engine podman|docker", "--base debootstrap|IMAGE", "--torch-variant"):
        assert engine in BUILD
    assert "debootstrap --variant=minbase --include=python3,python3-venv bookworm" in BUILD


# -- compose and the e2e script run the same thing -------------------------------------------


def test_compose_and_e2e_use_the_same_flags(compose: dict, flower_flags: dict[str, set[str]]) -> None:
    services = dict(compose["services"])
    gate = services.pop("fleet-gate")  # the gate's command is compared in the next test
    roles = {name: _service_role(svc) for name, svc in services.items()}
    assert roles == {"superlink": "superlink", "supernode-1": "supernode", "supernode-2": "supernode"}
    assert _service_role(gate) == "superlink" and gate["entrypoint"] == ["python"]
    link_port = re.search(r"^LINK_PORT=(\d+)$", E2E, re.M)
    assert link_port
    script = {
        "superlink": _flags(
            [a.replace("$LINK_PORT", link_port.group(1)) for a in _script_array("SUPERLINK_ARGS")]
        ),
        "supernode": _flags(_script_array("SUPERNODE_ARGS")),
    }
    for name, svc in services.items():
        role = roles[name]
        flags = _flags([_default(a) for a in svc["command"]])
        unknown = set(flags) - flower_flags[role]
        assert not unknown, f"{name}: flags {unknown} not accepted by {ROLES[role]} {flwr.__version__}"
        assert set(flags) == set(script[role]), f"{name}: compose and container-e2e.sh differ"
        assert "--insecure" not in flags
        for flag, value in flags.items():
            if flag in ("--superlink", "--node-config"):  # per node / per network, compared below
                continue
            assert value == script[role][flag].strip('"'), f"{name} {flag}: {value} vs {script[role][flag]}"
    link = _flags(services["superlink"]["command"])
    assert "--enable-supernode-auth" in link and link["--ssl-ca-certfile"]
    port = link["--port"]
    assert services["superlink"]["ports"] == [f"127.0.0.1:${{SUPERLINK_PORT:-{port}}}:{port}"]
    assert '-p "127.0.0.1:$HOST_PORT:$LINK_PORT"' in E2E and "LINK_ADDR=fleet-gate:$GATE_PORT" in E2E
    assert "--network-alias superlink" in E2E
    gate_port = re.search(r"^GATE_PORT=(\d+)$", E2E, re.M).group(1)
    for name in ("supernode-1", "supernode-2"):
        assert _flags(services[name]["command"])["--superlink"] == f"fleet-gate:{gate_port}"
    assert script["supernode"]["--superlink"] == "$3"
    # node i's client id is the simulation's id of its domain (written by the export step)
    assert 'supernode_args "$(cat "$WORK/data/supernode-$i.id")" "$domain" "$LINK_ADDR"' in E2E


def test_supernodes_reach_only_the_fleet_gate(compose: dict) -> None:
    """Issue #27.4: the SuperNodes' network holds the gate, not the SuperLink (whose Control API
    trusts anyone with ca.crt); compose and the e2e script start the same gate."""
    services = compose["services"]
    gate = services["fleet-gate"]
    link_port = re.search(r"^LINK_PORT=(\d+)$", E2E, re.M).group(1)
    gate_port = re.search(r"^GATE_PORT=(\d+)$", E2E, re.M).group(1)
    script = []
    for arg in _script_array("GATE_ARGS"):
        script.append(arg.replace("$LINK_PORT", link_port).replace("$GATE_PORT", gate_port))
    assert gate["command"] == script
    assert services["superlink"]["networks"] == ["link"] and set(gate["networks"]) == {"link", "fleet"}
    for name in ("supernode-1", "supernode-2"):
        assert services[name]["networks"] == ["fleet"]
        assert services[name]["depends_on"] == {"fleet-gate": {"condition": "service_healthy"}}
    assert gate["ports"] == [f"${{FLEET_BIND:-127.0.0.1}}:${{FLEET_PORT:-{gate_port}}}:{gate_port}"]
    assert 'net_node=(--network "$FLEET_NET")' in E2E and "network connect --alias fleet-gate" in E2E
    assert "--hostname superlink --hostname fleet-gate" in E2E
    # only the Fleet API and /health pass the gate
    from fedlab.deploy.fleet_gate import allowed

    assert allowed("/v1/fleet/pull-messages") and allowed("/health")
    assert not allowed("/v1/control/list-runs") and not allowed("/flwr.proto.Control/ListRuns")


def _mount_targets(volumes: list[str]) -> list[str]:
    return [v.split(":")[1] for v in volumes]


def _e2e_mounts(container: str) -> list[str]:
    """Container-side targets of the -v options of one `run` in container-e2e.sh."""
    block = re.search(rf'run -d --name "\$PREFIX-{container}.*?\n(.*?)"\$(LINK|NODE)_IMAGE"', E2E, re.S)
    assert block, container
    return re.findall(r'-v "[^"]+:([^":]+):ro"', block.group(1))


def test_mounts_cover_every_file_flag_and_each_node_gets_only_its_own(compose: dict) -> None:
    services = compose["services"]
    link_mounts = _e2e_mounts("superlink")
    node_mounts = _e2e_mounts("supernode-\\$i")
    assert link_mounts == ["/certs"] and node_mounts == ["/certs", "/keys", "/data"]
    for name, svc in services.items():
        targets = _mount_targets(svc["volumes"])
        script_targets = node_mounts if name.startswith("supernode") else link_mounts
        assert all(v.endswith(":ro") for v in svc["volumes"]), f"{name}: every mount read-only"
        for arg in svc["command"]:
            if arg.startswith("--database="):  # the SuperLink's state: its container's own layer
                continue
            path = _default(arg).split("=", 1)[-1]
            for p in [path, *re.findall(r"'(/[^']+)'", path)]:
                if p.startswith("/") and p.count("/") > 1:
                    assert any(p == t or p.startswith(t.rstrip("/") + "/") for t in targets), f"{name}: {p}"
                    assert any(p.startswith(t + "/") for t in script_targets), f"container-e2e.sh: {p}"
        if name.startswith("supernode"):
            own, other = name, "supernode-2" if name == "supernode-1" else "supernode-1"
            hosts = " ".join(v.split(":")[0] for v in svc["volumes"])
            assert own in hosts and other not in hosts, f"{name} must mount only its own key and data"
            assert not any("server.key" in v or "ca.key" in v for v in svc["volumes"])
    for name in ("superlink", "fleet-gate"):
        assert not any("ca.key" in v for v in services[name]["volumes"]), "the CA key stays offline"
    assert 'stage "$WORK/keys/supernode-$i/auth.key" "$WORK/mount/supernode-$i/keys"' in E2E
    assert '-v "$node_data:/data:ro"' in E2E and "node_data=$WORK/data/supernode-$i" in E2E


def test_node_config_is_what_the_clientapp_reads(compose: dict, tmp_path: Path) -> None:
    """Each SuperNode's node config names its domain and its own exported .npz under /data."""
    from flwr.common.config import parse_config_args

    from clients.local_data import export_domain, partition_for
    from fedlab.config import SimulationConfig

    cfg = SimulationConfig.model_validate({"training": {"target": "colour"}})
    domains = []
    for name in ("supernode-1", "supernode-2"):
        arg = next(a for a in compose["services"][name]["command"] if a.startswith("--node-config="))
        node_config = dict(parse_config_args([_default(arg.split("=", 1)[1])]))
        assert node_config["data-path"] == f"/data/{node_config['domain']}.npz"
        # What the e2e script exports into the node's folder is what the ClientApp loads, and the
        # node's client id is the simulation's id of its domain (it seeds the node's training).
        simulated = partition_for(cfg, "colour", {"domain": node_config["domain"]})
        assert node_config["client-id"] == simulated.client_id, name
        local = tmp_path / name / f"{node_config['domain']}.npz"
        local.parent.mkdir()
        export_domain(local, simulated)
        part = partition_for(cfg, "colour", {**node_config, "data-path": str(local)})
        assert part.domain == node_config["domain"] and len(part.y_train) > 0
        domains.append(part.domain)
    assert len(set(domains)) == 2, "each SuperNode holds its own domain"
    assert """--node-config="domain='$2' client-id=$1 data-path='/data/$2.npz'\"""" in E2E


def test_readme_documents_the_compose_steps() -> None:
    readme = (DOCKER / "README.md").read_text(encoding="utf-8")
    for step in (
        "fedlab deploy certs --out docker/certs --hostname superlink --hostname fleet-gate",
        "fedlab deploy keys --nodes 2 --out docker/keys",
        "bash scripts/container-build.sh",
        "bash scripts/container-e2e.sh",
        "setfacl -R -m u:10001:rX",  # readable by the containers, still owned by the operator
        "CONTAINERS_CONF=$PWD/docker/podman-containers.conf",  # absolute: podman's copier runs elsewhere
    ):
        assert step in readme, step
    conf = (DOCKER / "podman-containers.conf").read_text(encoding="utf-8")
    assert "default_ulimits = []" in conf and 'runtime = "runc"' in conf
