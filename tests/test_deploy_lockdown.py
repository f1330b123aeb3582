"""Issue #27: a site holding only the CA certificate can neither list runs nor register a node.

Real processes on 127.0.0.1, no containers: a TLS SuperLink with SuperNode authentication listens
on loopback (the operator's Control API), and the Fleet gate (`fedlab.deploy.fleet_gate`) is the
address sites are given. Through the gate, ``flwr ls`` and ``flwr supernode register`` with the
CA certificate fail (403), while a registered SuperNode connects through it; the same commands
on the SuperLink's loopback port work, so the gate is what stops them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedlab.deploy.certs import generate_certs, generate_node_keys
from fedlab.deploy.fleet_gate import allowed
from fedlab.deploy.flower_config import (
    CONNECTION,
    gate_argv,
    superlink_argv,
    supernode_argv,
    write_cli_config,
)
from fedlab.deploy.network import HOST, free_ports
from fedlab.deploy.processes import Processes, wait_port
from tests.test_deploy import FLWR_ENV, procs  # noqa: F401 - the fixture

FLWR = str(Path(sys.executable).with_name("flwr"))


def _flwr(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **FLWR_ENV, "FLWR_HOME": str(home)}
    return subprocess.run([FLWR, *args], capture_output=True, text=True, env=env, timeout=120)


def test_gate_paths() -> None:
    assert allowed("/v1/fleet/pull-messages") and allowed("/health")
    for path in ("/v1/control/list-runs", "/v1/control/register-supernode", "/v1/runtime/pull-messages",
                 "/v1/fleet", "/", "/docs"):  # fmt: skip
        assert not allowed(path), path


@pytest.mark.timeout(300)
def test_ca_holder_cannot_list_runs_or_register_through_the_gate(tmp_path: Path, procs: Processes) -> None:  # noqa: F811
    certs = generate_certs(tmp_path / "certs")
    keys = generate_node_keys(tmp_path / "keys", 2)
    link_port, gate_port, node_port = free_ports(3)
    link = procs.start("superlink", superlink_argv(link_port, certs, auth=True))
    wait_port(HOST, link_port, link, 90)
    gate = procs.start("gate", gate_argv(gate_port, link_port, certs))
    wait_port(HOST, gate_port, gate, 60)
    site, operator = tmp_path / "site-home", tmp_path / "operator-home"
    write_cli_config(site, gate_port, certs.ca_cert)  # what a site knows: the address + ca.crt
    write_cli_config(operator, link_port, certs.ca_cert)

    listing = _flwr(site, "ls", CONNECTION, "--format", "json")
    assert listing.returncode != 0 or '"runs"' not in listing.stdout, listing.stdout
    assert "403" in listing.stdout + listing.stderr or "Forbidden" in listing.stdout + listing.stderr, (
        listing.stdout + listing.stderr
    )
    register = _flwr(site, "supernode", "register", str(keys[1].public_key), CONNECTION)
    assert register.returncode != 0 and "registered successfully" not in register.stdout + register.stderr

    # the operator, on the SuperLink's host, can: the gate is what stopped the site
    assert '"runs"' in _flwr(operator, "ls", CONNECTION, "--format", "json").stdout
    ok = _flwr(operator, "supernode", "register", str(keys[0].public_key), CONNECTION)
    assert "registered successfully" in ok.stdout + ok.stderr, ok.stdout + ok.stderr
    nodes = _flwr(operator, "supernode", "ls", CONNECTION, "--format", "json")
    assert nodes.stdout.count('"node_id"') <= 1, nodes.stdout  # the site's key never got in

    # and the Fleet API works through the gate: the registered SuperNode connects
    argv = supernode_argv(1, "original", gate_port, node_port, certs.ca_cert, keys[0])
    node = procs.start("supernode-1", argv)

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any("SuperNode ID:" in ln for ln in node.tail):
        assert node.alive(), node.output()
        time.sleep(0.3)
    assert any("SuperNode ID:" in ln for ln in node.tail), node.output()
