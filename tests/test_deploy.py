"""Deployment: key material, container files, and real Flower processes on 127.0.0.1.

Quick (default suite): certificate/key formats and permissions, static checks of
``docker/`` against the installed Flower CLIs, a wrong CA, and a SuperLink refusing an
unregistered SuperNode (real processes, ~30 s). Slow (``-m slow``): full TLS + auth
deployments training 2 FedAvg rounds, with and without a SuperNode killed mid-run.
Every process a test starts carries a private environment marker; each test asserts
that none is left afterwards.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import flwr
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from fedlab.deploy.certs import generate_certs, generate_node_keys, load_node_private_key
from fedlab.deploy.local import (
    HOST,
    LocalOptions,
    Processes,
    check_tls,
    free_ports,
    run_local,
    tagged_pids,
)
from fedlab.errors import FedlabError

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
BIN = Path(sys.executable).parent
FLWR_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """A process supervisor whose every child (and grandchild) is stopped and checked gone."""
    env = {**os.environ, **FLWR_ENV, "FLWR_HOME": str(tmp_path / "flwr-home")}
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    lines: list[str] = []
    supervisor = Processes(tmp_path, env, lines.append)
    try:
        yield supervisor
    finally:
        survivors = supervisor.stop_all(grace=5)
        assert survivors == [], f"processes left behind: {survivors}"
        assert tagged_pids(supervisor.tag) == []


# -- (a) key material ------------------------------------------------------------------


def test_certs_have_sans_permissions_and_chain(tmp_path: Path) -> None:
    paths = generate_certs(tmp_path / "certs", ["superlink", "10.1.2.3", "node.example.org"])
    assert _mode(paths.directory) == 0o700
    for private in (paths.ca_key, paths.server_key, paths.superexec_secret):
        assert _mode(private) == 0o600, private
    for public in (paths.ca_cert, paths.server_cert):
        assert _mode(public) == 0o644, public
    assert not list(paths.directory.glob(".*")), "temporary files left behind"

    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "superlink", "node.example.org"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1", "10.1.2.3"}
    key = serialization.load_pem_private_key(paths.server_key.read_bytes(), password=None)
    assert key.public_key() == server.public_key()
    assert len(paths.superexec_secret.read_bytes()) == 64

    # Python's TLS stack (what check_tls and httpx use) accepts the pair for "localhost".
    ctx = ssl.create_default_context(purpose=ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(paths.server_cert, paths.server_key)


def test_certs_reuse_the_ca_unless_asked(tmp_path: Path) -> None:
    first = generate_certs(tmp_path / "c")
    ca_before = first.ca_cert.read_bytes()
    secret_before = first.superexec_secret.read_bytes()
    second = generate_certs(tmp_path / "c", ["superlink"])
    assert second.ca_cert.read_bytes() == ca_before  # reissued server cert, same trust root
    assert second.superexec_secret.read_bytes() == secret_before
    assert "superlink" in second.sans
    third = generate_certs(tmp_path / "c", new_ca=True)
    assert third.ca_cert.read_bytes() != ca_before


@pytest.mark.parametrize("bad", ["under_score", "-lead", "a" * 64, "x..y"])
def test_certs_reject_bad_hostnames_before_writing(tmp_path: Path, bad: str) -> None:
    with pytest.raises(FedlabError, match="not a valid DNS name"):
        generate_certs(tmp_path / "c", [bad])
    assert not (tmp_path / "c" / "ca.crt").exists()


def test_node_keys_are_what_flower_loads(tmp_path: Path) -> None:
    from flwr.cli.supernode.register import try_load_public_key

    nodes = generate_node_keys(tmp_path / "keys", 2)
    assert [n.name for n in nodes] == ["supernode-1", "supernode-2"]
    assert _mode(tmp_path / "keys") == 0o700
    for node in nodes:
        assert _mode(node.directory) == 0o700
        assert _mode(node.private_key) == 0o600
        assert _mode(node.superexec_secret) == 0o600
        assert _mode(node.public_key) == 0o644
        # flower-supernode: load_ssh_private_key(...) must give an EC key
        private = serialization.load_ssh_private_key(node.private_key.read_bytes(), password=None)
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        assert isinstance(private.curve, ec.SECP384R1)
        # flwr supernode register: OpenSSH public key on a NIST curve
        assert try_load_public_key(node.public_key)
        public = serialization.load_ssh_public_key(node.public_key.read_bytes())
        assert public == private.public_key()
        assert load_node_private_key(node.private_key).public_key() == public
    # Re-running keeps registered keys; --overwrite replaces them.
    again = generate_node_keys(tmp_path / "keys", 2)
    assert again[0].public_key.read_bytes() == nodes[0].public_key.read_bytes()
    before = nodes[0].public_key.read_bytes()
    generate_node_keys(tmp_path / "keys", 1, overwrite=True)
    assert nodes[0].public_key.read_bytes() != before


def test_deploy_cli_certs_and_keys(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fedlab.deploy.cli import deploy_app

    runner = CliRunner()
    res = runner.invoke(deploy_app, ["certs", "--out", str(tmp_path / "c"), "--hostname", "superlink"])
    assert res.exit_code == 0, res.output
    assert "superlink" in res.output and (tmp_path / "c" / "server.pem").is_file()
    res = runner.invoke(deploy_app, ["keys", "--nodes", "2", "--out", str(tmp_path / "k")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "k" / "supernode-2" / "auth.pub").is_file()
    res = runner.invoke(deploy_app, ["certs", "--out", str(tmp_path / "c"), "--hostname", "bad_name"])
    assert isinstance(res.exception, FedlabError)


# -- (d, quick) a wrong CA is named clearly -------------------------------------------


def _tls_server(cert: Path, key: Path) -> tuple[int, threading.Event]:
    ctx = ssl.create_default_context(purpose=ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    sock = socket.socket()
    sock.bind((HOST, 0))
    sock.listen(4)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        with sock:
            while not stop.is_set():
                try:
                    conn, _ = sock.accept()
                except TimeoutError:
                    continue
                try:
                    with ctx.wrap_socket(conn, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock.getsockname()[1], stop


def test_wrong_ca_fails_with_a_clear_error(tmp_path: Path) -> None:
    good = generate_certs(tmp_path / "good")
    other = generate_certs(tmp_path / "other")
    port, stop = _tls_server(good.server_cert, good.server_key)
    try:
        check_tls(HOST, port, good.ca_cert)  # the right CA passes
        with pytest.raises(FedlabError, match=r"not trusted by .*other.*ca\.crt"):
            check_tls(HOST, port, other.ca_cert)
    finally:
        stop.set()


# -- (b) docker/ checked statically ----------------------------------------------------


def _help(command: str) -> str:
    out = subprocess.run(
        [str(BIN / command), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **FLWR_ENV},
        check=True,
    )
    return out.stdout


@pytest.fixture(scope="module")
def flower_flags() -> dict[str, set[str]]:
    """Flags each Flower 1.42 component accepts, read from its own --help."""
    return {
        name: set(re.findall(r"(--[a-z][a-z0-9-]*)", _help(command)))
        for name, command in (
            ("superlink", "flower-superlink"),
            ("supernode", "flower-supernode"),
            ("superexec", "flower-superexec"),
        )
    }


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yml").read_text(encoding="utf-8"))


def _env_default(text: str) -> str:
    """Resolve compose's ${VAR:-default} to its default."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)


def _role(service: dict) -> str:
    image = _env_default(service["image"])
    if image.startswith("flwr/superlink:"):
        return "superlink"
    if image.startswith("flwr/supernode:"):
        return "supernode"
    assert "build" in service, f"{image}: neither a Flower image nor built from docker/Dockerfile"
    return "superexec"


def test_dockerfile_builds_on_flower_superexec() -> None:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    version = re.search(r"ARG FLWR_VERSION=(\S+)", text)
    assert version and version.group(1) == flwr.__version__
    assert re.search(r"^FROM flwr/superexec:\$\{FLWR_VERSION\}$", text, re.M)
    assert re.search(r"ARG TORCH_VARIANT=cpu", text), "CPU default, CUDA via --build-arg"
    entry = re.search(r'^ENTRYPOINT \["([^"]+)"\]', text, re.M)
    assert entry and entry.group(1) == "flower-superexec" and (BIN / "flower-superexec").exists()
    for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for item in src.split():
            assert (ROOT / item).exists(), f"Dockerfile copies missing {item}"
    # The sed that drops the pinned flwr requirement must match pyproject's line.
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'"flwr\[simulation\]==', pyproject)
    # The apps the image smoke-imports are the Flower components pyproject names.
    for module in re.findall(r"(server\.app|clients\.app)", text):
        assert f'"{module}:app"' in pyproject
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    assert "!fedlab/" in ignore and ".venv" not in ignore.replace("*", "")


def test_compose_uses_real_flower_flags(compose: dict, flower_flags: dict[str, set[str]]) -> None:
    services = compose["services"]
    roles = {name: _role(svc) for name, svc in services.items()}
    assert sorted(roles.values()) == ["superexec"] * 3 + ["superlink"] + ["supernode"] * 2
    removed = {"--clientappio-api-address", "--serverappio-api-address", "--appio-api-address",
               "--fleet-api-address", "--control-api-address", "--plugin-type",
               "--auth-list-public-keys", "--auth-supernode-public-key"}  # fmt: skip
    for name, svc in services.items():
        image = _env_default(svc["image"])
        if not image.startswith("fedlab-superexec"):
            assert image.endswith(f":{flwr.__version__}"), f"{name}: {image}"
        flags = {arg.split("=", 1)[0] for arg in svc["command"] if arg.startswith("--")}
        unknown = flags - flower_flags[roles[name]]
        assert not unknown, f"{name}: flags not accepted by {roles[name]}: {unknown}"
        assert not flags & removed, f"{name}: removed/deprecated flags {flags & removed}"
    link = services["superlink"]["command"]
    assert "--enable-supernode-auth" in link and "--isolation=process" in link
    assert not any(a.startswith("--insecure") for a in link)
    port = next(a.split("=")[1] for a in link if a.startswith("--port="))
    for name, svc in services.items():
        cmd = svc["command"]
        if roles[name] == "supernode":
            assert f"--superlink=superlink:{port}" in cmd
            assert "--isolation=process" in cmd
            assert any(a.startswith("--root-certificates=") for a in cmd)
            assert any(a.startswith("--auth-supernode-private-key=") for a in cmd)
        if roles[name] == "superexec":
            address = next(a.split("=", 1)[1] for a in cmd if a.startswith("--runtime-api-address="))
            host, _, target_port = address.partition(":")
            assert host in services, f"{name} points at unknown service {host}"
            target = services[host]["command"]
            assert f"--port={target_port}" in target
            assert set(svc["networks"]) & set(services[host]["networks"]), f"{name} cannot reach {host}"
            if roles[host] == "superlink":  # the public port: TLS to the SuperLink
                assert any(a.startswith("--root-certificates=") for a in cmd)
            secret = next(a for a in cmd if a.startswith("--superexec-auth-secret-file="))
            assert secret.split("=", 1)[1] in " ".join(target), f"{name} and {host} must share a secret"


def test_compose_mounts_exist_after_deploy_certs_and_keys(tmp_path: Path, compose: dict) -> None:
    """Every host path compose mounts exists in the repo or is made by the documented steps."""
    readme = (DOCKER / "README.md").read_text(encoding="utf-8")
    assert "fedlab deploy certs --out docker/certs --hostname superlink" in readme
    assert "fedlab deploy keys --nodes 2 --out docker/keys" in readme
    assert "mkdir -p docker/data/supernode-1 docker/data/supernode-2 docker/runs" in readme
    root = tmp_path / "docker"
    certs = generate_certs(root / "certs", ["superlink"])
    generate_node_keys(root / "keys", 2)
    for folder in ("data/supernode-1", "data/supernode-2", "runs"):
        (root / folder).mkdir(parents=True)
    san = x509.load_pem_x509_certificate(certs.server_cert.read_bytes()).extensions
    assert "superlink" in san.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            host = volume.split(":", 1)[0]
            assert host.startswith("./"), f"{name}: use paths relative to docker/ ({volume})"
            assert (root / host).exists() or (DOCKER / host).exists(), f"{name}: {host} is never created"
        for arg in svc["command"]:
            if arg.startswith("--") and "=/app/" in arg:  # every file flag points into a mount
                target = arg.split("=", 1)[1]
                mounts = [v.split(":")[1] for v in svc.get("volumes", [])]
                assert any(target == m or target.startswith(m.rstrip("/") + "/") for m in mounts), (
                    f"{name}: {arg} is not mounted"
                )


def test_compose_node_config_is_what_the_clientapp_reads(compose: dict) -> None:
    from flwr.common.config import parse_config_args

    from clients.local_data import partition_for
    from fedlab.config import SimulationConfig

    domains = set()
    for svc in compose["services"].values():
        for arg in svc["command"]:
            if arg.startswith("--node-config="):
                node_config = parse_config_args([_env_default(arg.split("=", 1)[1])])
                cfg = SimulationConfig.model_validate({"training": {"target": "colour"}})
                part = partition_for(cfg, "colour", dict(node_config))
                assert part.domain == node_config["domain"] and len(part.y_train) > 0
                domains.add(part.domain)
    assert len(domains) == 2, "each SuperNode holds its own domain"


# -- (d) real processes: an unregistered SuperNode is refused ---------------------------


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(180)
def test_unregistered_supernode_is_refused(tmp_path: Path, procs: Processes) -> None:
    certs = generate_certs(tmp_path / "certs")
    keys = generate_node_keys(tmp_path / "keys", 1)
    link_port, node_port = free_ports(2)
    link = procs.start(
        "superlink",
        [str(BIN / "flower-superlink"), "--host", HOST, "--port", str(link_port),
         "--ssl-ca-certfile", str(certs.ca_cert), "--ssl-certfile", str(certs.server_cert),
         "--ssl-keyfile", str(certs.server_key), "--enable-supernode-auth"],
    )  # fmt: skip
    _wait_for(lambda: any("Uvicorn running on https://" in ln for ln in link.tail), 90, "SuperLink")
    check_tls(HOST, link_port, certs.ca_cert)
    # A SuperNode/CLI given another deployment's CA is told so in one line, before connecting.
    stranger = generate_certs(tmp_path / "stranger")
    with pytest.raises(FedlabError, match="not trusted by"):
        check_tls(HOST, link_port, stranger.ca_cert)
    node = procs.start(
        "supernode-1",
        [str(BIN / "flower-supernode"), "--superlink", f"{HOST}:{link_port}",
         "--root-certificates", str(certs.ca_cert), "--auth-supernode-private-key", str(keys[0].private_key),
         "--host", HOST, "--port", str(node_port), "--max-retries", "1",
         "--node-config", "domain='original'"],
    )  # fmt: skip
    node.popen.wait(timeout=120)
    _wait_for(lambda: any("No SuperNode found" in ln for ln in link.tail), 10, "SuperLink refusal log")
    assert node.popen.returncode != 0
    assert any("Failed to activate SuperNode" in ln for ln in node.tail), node.output()
    assert not any("SuperNode ID:" in ln for ln in node.tail)


# -- (c, e) full deployments (slow) ----------------------------------------------------


def _run(tmp_path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    lines: list[str] = []
    opts = LocalOptions(
        nodes=2,
        rounds=2,
        strategy="fedavg",
        target="colour",
        domains=["original", "rotated"],
        local_steps=3,
        out=tmp_path / "runs",
        round_timeout=240,
        timeout=900,
        sink=lines.append,
        **kwargs,  # type: ignore[arg-type]
    )
    result = run_local(opts)
    assert result.leftover_pids == [], result.leftover_pids
    return result, lines


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]


@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_tls_auth_deployment_trains_two_rounds(tmp_path: Path) -> None:
    result, lines = _run(tmp_path)
    assert result.ok, "\n".join(lines[-40:])
    assert result.run_dir is not None and result.run_dir.parent == tmp_path / "runs"
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["rounds"] == 2 and summary["target"] == "colour"
    assert summary["deployment"]["supernodes"] == 2
    assert summary["deployment"]["clients_seen"] == ["1:original", "2:rotated"]
    rounds = _metrics(result.run_dir)
    assert [r["round"] for r in rounds] == [1, 2]
    assert all(r["clients_ok"] == 2 and r["clients_failed"] == 0 for r in rounds)
    assert (result.run_dir / "model.pt").stat().st_size > 0
    assert any(ln.startswith("[superlink]") for ln in lines)
    assert any(ln.startswith("[supernode-2]") for ln in lines)
    assert any("registered successfully" in ln for ln in lines)


@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_killing_a_supernode_mid_run_does_not_fail_the_run(tmp_path: Path) -> None:
    result, lines = _run(tmp_path, kill_node=(2, r"Receiving: train message"))
    assert result.killed == ["supernode-2"]
    assert result.ok, "\n".join(lines[-40:])
    rounds = _metrics(result.run_dir)
    assert [r["round"] for r in rounds] == [1, 2]
    assert rounds[0]["clients_ok"] == 1  # supernode-2 died during round 1's training
    assert list(rounds[-1]["client_target_acc"]) == ["1:original"]
