"""Deployment: key material and real Flower processes on 127.0.0.1.

Quick (default suite): certificate/key formats and permissions, a wrong CA, and a SuperLink
refusing an unregistered SuperNode (real processes, ~30 s); ``docker/`` is checked in
test_container_files.py. Slow (``-m slow``): full TLS + auth
deployments training 2 FedAvg rounds, with and without a SuperNode killed mid-run.
Every process a test starts carries a private environment marker; each test asserts
that none is left afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from fedlab.core.errors import FedlabError
from fedlab.deploy.certs import generate_certs, generate_node_keys, load_node_private_key
from fedlab.deploy.local import LocalOptions, run_local
from fedlab.deploy.network import HOST, check_tls, free_ports
from fedlab.deploy.processes import Processes, tagged_pids
from fedlab.deploy.rounds import NodeIdSink, RoundReport

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
    for private in (paths.ca_key, paths.server_key):
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
    assert not list(paths.directory.glob("*secret*"))  # no SuperExec secret: unused in subprocess mode

    # Python's TLS stack (what check_tls and httpx use) accepts the pair for "localhost".
    ctx = ssl.create_default_context(purpose=ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(paths.server_cert, paths.server_key)


def test_certs_reuse_the_ca_unless_asked(tmp_path: Path) -> None:
    first = generate_certs(tmp_path / "c")
    ca_before = first.ca_cert.read_bytes()
    second = generate_certs(tmp_path / "c", ["superlink"])
    assert second.ca_cert.read_bytes() == ca_before  # reissued server cert, same trust root
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
        assert not list(node.directory.glob("*secret*"))
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

    from fedlab.cli.deploy import deploy_app

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


# (b) docker/ and the container scripts are checked statically in test_container_files.py.


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
    sink = NodeIdSink(lines.append)  # as `fedlab deploy local` does: node id -> supernode-N
    settings: dict[str, object] = {
        "nodes": 2,
        "rounds": 2,
        "strategy": "fedavg",
        "target": "colour",
        "domains": ["original", "rotated"],
        "local_steps": 3,
        "out": tmp_path / "runs",
        "round_timeout": 240,
        "timeout": 900,
        "sink": sink,
    }
    opts = LocalOptions(**{**settings, **kwargs})  # type: ignore[arg-type]
    result = run_local(opts)
    assert result.leftover_pids == [], result.leftover_pids
    return result, lines, sink.names


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]


@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_tls_auth_deployment_trains_two_rounds(tmp_path: Path) -> None:
    result, lines, names = _run(tmp_path)
    assert result.ok, "\n".join(lines[-40:])
    report = RoundReport.from_run_dir(result.run_dir, names)
    assert sorted(names.values()) == ["supernode-1", "supernode-2"]
    assert len(report.records) == 4 and report.all_nodes_message() is None  # 2 rounds x train/evaluate
    assert report.lines()[0].startswith("round 1: train 2/2 replies, evaluate 2/2 replies")
    assert result.run_dir is not None and result.run_dir.parent == tmp_path / "runs"
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["rounds"] == 2 and summary["target"] == "colour"
    assert summary["deployment"]["supernodes"] == 2
    assert summary["deployment"]["clients_seen"] == ["0:original", "1:rotated"]  # by domain
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
    result, lines, names = _run(tmp_path, kill_node=(2, r"Receiving: train message"))
    assert result.killed == ["supernode-2"]
    assert result.ok, "\n".join(lines[-40:])
    # The loss is reported per round and names the node (it was silent before).
    report = RoundReport.from_run_dir(result.run_dir, names)
    victim = next(node for node, name in names.items() if name == "supernode-2")
    assert set(report.lost()[1]) == {victim} and set(report.lost()) == {1, 2}
    assert "LOST supernode-2 (node" in report.lines()[0]
    assert "supernode-2" in (report.all_nodes_message() or "")
    assert any("replies round 1 train: 1 of 2; lost: node" in ln for ln in lines)
    rounds = _metrics(result.run_dir)
    assert [r["round"] for r in rounds] == [1, 2]
    assert rounds[0]["clients_ok"] == 1  # supernode-2 died during round 1's training
    assert list(rounds[-1]["client_target_acc"]) == ["1:original"]


@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_sampled_deployment_reports_unsampled_nodes_as_not_lost(tmp_path: Path) -> None:
    result, lines, names = _run(
        tmp_path,
        nodes=3,
        domains=["original", "rotated", "inverted"],
        run_config={"clients-per-round": 2},
    )
    assert result.ok, "\n".join(lines[-40:])
    report = RoundReport.from_run_dir(result.run_dir, names)
    assert report.all_nodes_message() is None
    assert report.lines()[0].startswith("round 1: query 3/3 replies, train 2/2 replies, evaluate 2/2")
    assert report.lines()[1].startswith("round 2: train 2/2 replies, evaluate 2/2")
    assert all(len(r["not_sampled"]) == 1 and not r["not_sent"] for r in report.records[1:])
    rounds = _metrics(result.run_dir)
    assert [len(r["sampled_clients"]) for r in rounds] == [2, 2]
