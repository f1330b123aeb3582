"""A deployment of a whole fedlab config: what its SuperNodes are and what ``flwr run`` submits.

Why a module of its own: `fedlab deploy local --config` and scripts/container-e2e.sh --config
deploy the same config (any federation, every setting) and must agree on the node domains and
on the one run-config value that carries it (``fedlab-config``); on a site, the SuperNode reads
files only below its own data folder, so the schema travels as a name relative to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedlab.core.errors import FedlabError


def node_schema(cfg: Any, data_dir: Path | None) -> str:
    """The config's schema file as the SuperNodes name it: relative to their data folder (a run
    config never names a file elsewhere on a site, `clients.local_data.check_node_files`)."""
    schema = cfg.federation.schema_file
    if not schema:
        return ""
    path = Path(schema).expanduser().resolve()
    root = Path(data_dir).expanduser().resolve() if data_dir else None
    if root is None or root not in path.parents:
        raise FedlabError(
            f"federation.schema = {schema}: a deployed SuperNode reads only its own data folder; put the "
            f"schema below --data-dir ({root or 'not given'}) and name it there"
        )
    return str(path.relative_to(root))


def config_domains(cfg: Any) -> list[str]:
    """The simulation's clients' domains, in client-id order: one SuperNode each."""
    from fedlab.federation.setup import setup_for

    if cfg.federation.clients_per_domain != 1:
        raise FedlabError(
            f"federation.clients_per_domain = {cfg.federation.clients_per_domain}: a deployment runs one "
            "SuperNode per domain (its operator's whole domain); set it to 1 in the config"
        )
    return [client.domain for client in setup_for(cfg).clients]


def whole_config(cfg: Any, out: str, data_dir: Path | None, server_data_dir: str | None = None) -> str:
    """The ``fedlab-config`` run-config value: `cfg` as JSON with the deployment's `out`, the
    ServerApp's data folder (`server_data_dir`, default `data_dir`; a container sees its mount)
    and the schema relative to the nodes' folder. Apostrophes become JSON's own escape, so the
    value travels as a TOML literal string (`fedlab.deploy.flower_config.run_config_arg`)."""
    folder = server_data_dir if server_data_dir is not None else str(data_dir or "")
    fed = cfg.federation.model_copy(update={"data_dir": folder, "schema_file": node_schema(cfg, data_dir)})
    return cfg.model_copy(update={"out": out, "federation": fed}).model_dump_json().replace("'", "\\u0027")
