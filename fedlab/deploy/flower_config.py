"""What the Flower processes of a local deployment are told: command lines, config, environment.

Why a module of its own: `fedlab.deploy.local` decides when to start what, and
`fedlab.deploy.processes` keeps it running and stops it; this module holds what each Flower
process is given — the SuperLink's TLS and SuperNode-authentication flags, each SuperNode's
address, key and ``--node-config`` (its domain), the ``flwr`` CLI's connection
(``FLWR_HOME/config.toml``), the ``--run-config`` submitted with ``flwr run``, and the app's own
defaults from its ``pyproject.toml``. Nothing here starts a process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fedlab.core.errors import FedlabError
from fedlab.deploy.certs import CertPaths, NodeKeys, ensure_private_dir
from fedlab.deploy.network import HOST

CONNECTION = "fedlab-local"
FLWR_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "PYTHONUNBUFFERED": "1",
}
# Flower's CLI from this interpreter's environment (the `flwr` script next to sys.executable).
FLWR_CLI = [str(Path(sys.executable).with_name("flwr"))]


# -- the app -----------------------------------------------------------------------


def default_app_dir() -> Path:
    """This checkout, which is itself the Flower app (its pyproject.toml has [tool.flwr])."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise FedlabError(f"no Flower app found at {root} (pyproject.toml missing); pass --app")
    return root


def app_config(app_dir: Path) -> dict[str, Any]:
    """The app's ``[tool.flwr.app.config]`` defaults (e.g. its default ``target``)."""
    import tomllib

    data = tomllib.loads((Path(app_dir) / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(data.get("tool", {}).get("flwr", {}).get("app", {}).get("config", {}))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if '"' in text:
        # Flower's --run-config parser takes "..." up to the next double quote (no escapes), so a
        # value holding one (the JSON of `fedlab-config`) travels as a TOML literal string '...'
        if "'" in text or "\n" in text:
            raise FedlabError(f"run config value {text[:40]!r}...: holds both quote kinds or a newline")
        return f"'{text}'"
    return json.dumps(text)


def run_config_arg(values: Mapping[str, Any]) -> str:
    """``flwr run --run-config`` text: space-separated ``key=value`` pairs, values in TOML."""
    return " ".join(f"{k}={_toml_value(v)}" for k, v in values.items())


# -- environment and key material -------------------------------------------------------


def write_cli_config(home: Path, port: int, ca: Path | None) -> None:
    """``FLWR_HOME/config.toml``: the connection the ``flwr`` CLI uses to reach the SuperLink."""
    lines = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]"]
    lines.append(f'address = "{HOST}:{port}"')
    lines.append(f"root-certificates = {json.dumps(str(ca))}" if ca is not None else "insecure = true")
    ensure_private_dir(home)
    (home / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def child_env(home: Path) -> dict[str, str]:
    """Environment of every started process: Flower's quiet settings, ``FLWR_HOME``, this venv first."""
    env = dict(os.environ)
    env.update(FLWR_ENV)
    env["FLWR_HOME"] = str(home)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def executable(name: str) -> str:
    """A Flower executable next to this interpreter, else on PATH."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise FedlabError(f"{name} not found next to {sys.executable} or on PATH (is flwr installed?)")
    return found


def existing_certs(certs_dir: Path) -> CertPaths:
    """The files of an earlier `fedlab deploy certs` run, checked to exist."""
    d = Path(certs_dir).expanduser().resolve()  # processes run in the workdir
    certs = CertPaths(d, d / "ca.crt", d / "ca.key", d / "server.pem", d / "server.key", ())
    missing = [p for p in (certs.ca_cert, certs.server_cert, certs.server_key) if not p.is_file()]
    if missing:
        raise FedlabError(f"{missing[0]} not found; run `fedlab deploy certs --out {d}` first")
    return certs


# -- command lines -----------------------------------------------------------------


def superlink_argv(port: int, certs: CertPaths | None, auth: bool) -> list[str]:
    """``flower-superlink`` on HOST:port: TLS with `certs` (and SuperNode auth if `auth`), else insecure."""
    argv = [executable("flower-superlink"), "--host", HOST, "--port", str(port)]
    argv += ["--disable-runtime-dependency-installation"]
    if certs is None:
        argv += ["--insecure"]
    else:
        argv += ["--ssl-ca-certfile", str(certs.ca_cert), "--ssl-certfile", str(certs.server_cert)]
        argv += ["--ssl-keyfile", str(certs.server_key)]
        if auth:
            argv += ["--enable-supernode-auth"]
    return argv


def gate_argv(port: int, link_port: int, certs: CertPaths | None) -> list[str]:
    """The Fleet gate (`fedlab.deploy.fleet_gate`) on HOST:port in front of the SuperLink at link_port."""
    argv = [sys.executable, "-m", "fedlab.deploy.fleet_gate", "--listen", f"{HOST}:{port}"]
    argv += ["--superlink", f"{HOST}:{link_port}"]
    if certs is not None:
        argv += ["--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key)]
        argv += ["--ca", str(certs.ca_cert)]
    return argv


def register_argv(key: NodeKeys) -> list[str]:
    """``flwr supernode register``: let the SuperLink accept the SuperNode holding `key`."""
    return [*FLWR_CLI, "supernode", "register", str(key.public_key), CONNECTION]


def supernode_argv(
    index: int,
    domain: str,
    link_port: int,
    port: int,
    ca: Path | None,
    key: NodeKeys | None,
    data_dir: Path | None = None,
) -> list[str]:
    """``flower-supernode`` number `index`: trusts `ca` (else insecure), signs with `key`, loads `domain`."""
    argv = [executable("flower-supernode"), "--superlink", f"{HOST}:{link_port}"]
    argv += ["--root-certificates", str(ca)] if ca is not None else ["--insecure"]
    if key is not None:
        argv += ["--auth-supernode-private-key", str(key.private_key)]
    argv += ["--host", HOST, "--port", str(port), "--max-retries", "3"]
    # no client-id: the node's identity (and its training seed) follows its domain, as in simulation
    node_config = f"domain={json.dumps(domain)}"
    if data_dir is not None:  # the node's own data folder: the only files it will read
        node_config += f" data-dir={json.dumps(str(Path(data_dir).expanduser().resolve()))}"
    argv += ["--node-config", node_config]
    return argv


def run_argv(app_dir: Path, run_config: str) -> list[str]:
    """``flwr run --stream``: submit the app and follow the ServerApp's log until the run ends."""
    return [*FLWR_CLI, "run", str(app_dir), CONNECTION, "--run-config", run_config, "--stream"]


def list_argv(run_id: int) -> list[str]:
    """``flwr list`` for one run, as JSON (read by `run_status`)."""
    return [*FLWR_CLI, "list", "--run-id", str(run_id), "--format", "json", CONNECTION]


def run_status(listing: str) -> str:
    """The run's status (e.g. ``finished:completed``) from `list_argv`'s output; "unknown" if absent."""
    match = re.search(r"\{.*\}", listing, re.S)
    try:
        runs = json.loads(match.group(0))["runs"] if match else []
    except (ValueError, KeyError):
        runs = []
    return str(runs[0].get("status", "unknown")) if runs else "unknown"
