"""Where a client's data comes from: the simulation's partition, or the node's own files.

Simulation: Flower sets ``partition-id`` in the node config and the client takes that
partition of the federation (`fedlab.federation.setup.setup_for`). Deployment: a SuperNode is
started with ``--node-config "domain=NAME [data-path=FILE] [client-id=N]"``:

* ``data-path`` to an ``.npz`` with ``x_train, y_train, x_test, y_test`` (what
  `export_domain` below writes) — the node's own local data;
* ``data-dir``: the named domain of the run's federation, read from this folder only (every
  file the federation names must resolve inside it);
* neither: only an embedded federation (``digits``), which reads no file.

Why so strict (issue #27): the run config comes from whoever submits the run, the node config
from the site's operator. A run config naming ``data_dir``, ``csv`` or ``files`` would let the
submitter choose which file on the site's host is read, so a deployed node ignores the run
config's ``data_dir`` and refuses absolute or escaping file names. And the reply to the server
never carries the data error's text (which may quote the file, e.g. its column names): the
SuperNode logs it for its operator and answers with a generic line.
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from fedlab.config import SimulationConfig
from fedlab.core.errors import DataError
from fedlab.core.identity import check_code_identity
from fedlab.data import ClientPartition, load_federation, prepare
from fedlab.federation.setup import setup_for

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
EMBEDDED = ("digits",)  # federations that read no file: allowed on a node without data
log = logging.getLogger("fedlab.clients")


def partition_for(cfg: SimulationConfig, target: str, node_config: dict[str, Any]) -> ClientPartition:
    if "partition-id" in node_config:
        setup = setup_for(cfg, target)
        pid = int(node_config["partition-id"])
        if not 0 <= pid < len(setup.clients):
            raise DataError(
                f"partition-id {pid} out of range: the federation has {len(setup.clients)} clients"
            )
        return setup.clients[pid]
    if "domain" not in node_config:
        raise DataError(
            "node config needs 'partition-id' (simulation) or 'domain' [+ 'data-path'] (deployment)"
        )
    check_code_identity()  # a deployed node: is the submitted fedlab the one installed here?
    domain = str(node_config["domain"])
    given = node_config.get("client-id")
    data_path = str(node_config.get("data-path", ""))
    data_dir = str(node_config.get("data-dir", ""))
    try:
        if data_path:
            client_id = int(given) if given is not None else zlib.crc32(domain.encode()) % 10_000
            return _from_npz(Path(data_path), domain, client_id)
        check_node_files(cfg, data_dir)
        part = _from_federation(cfg.model_dump_json(), target, domain, data_dir)
        return part if given is None else dataclasses.replace(part, client_id=int(given))
    except DataError as exc:
        # the operator sees the details here; the run's submitter only that loading failed
        log.error("SuperNode data (domain %r): %s", domain, exc)
        raise DataError(
            f"SuperNode of domain {domain!r} could not load its configured data "
            f"({type(exc).__name__}; details in the SuperNode's log)"
        ) from None


def check_node_files(cfg: SimulationConfig, data_dir: str) -> None:
    """The run config names no file outside the node's own `data_dir` (see the module doc)."""
    fed = cfg.federation
    if not data_dir:
        if fed.name not in EMBEDDED:
            raise DataError(
                f"federation {fed.name!r} reads files, but this SuperNode was given no data: start it "
                "with --node-config data-path=FILE.npz or data-dir=FOLDER (a run config cannot "
                "choose a file on a site)"
            )
        return
    root = Path(data_dir).expanduser().resolve()
    names = [("csv", fed.csv), ("schema", fed.schema_file)] if fed.name == "tabular" else []
    if fed.name == "features":
        names += [("pattern", fed.pattern)]
        names += [(f"files.{d}.{k}", v) for d, split in fed.files.items() for k, v in split.items()]
    for key, name in names:
        if not name:
            continue
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise DataError(
                f"run config federation.{key} = {name!r}: a deployed SuperNode reads only files "
                "below its own data-dir; expected a relative name without '..'"
            )
        if key != "pattern" and root not in (root / name).resolve().parents:
            raise DataError(f"run config federation.{key} = {name!r} leaves this SuperNode's data-dir")


def _from_npz(path: Path, domain: str, client_id: int) -> ClientPartition:
    if not path.is_file():
        raise DataError(f"node data file {path} not found (expected an .npz with {', '.join(NPZ_KEYS)})")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}; expected {', '.join(NPZ_KEYS)}")
            arrays = {k: z[k] for k in NPZ_KEYS}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({type(exc).__name__})") from exc
    return ClientPartition(
        client_id=client_id,
        domain=domain,
        x_train=arrays["x_train"].astype(np.float32),
        y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"].astype(np.float32),
        y_test=arrays["y_test"].astype(np.int64),
    )


@lru_cache(maxsize=8)
def _from_federation(config_json: str, target: str, domain: str, data_dir: str) -> ClientPartition:
    """The node's domain as the simulation's client of that domain: same rows, same client id
    (which seeds its training, `fedlab.core.seeding.client_seed`), so a deployment reproduces
    the simulation of the same config — identity by domain, never by connection order."""
    cfg = SimulationConfig.model_validate_json(config_json)
    # the node's own folder, never the run config's (an empty one: embedded data only)
    update = {"data_dir": data_dir}
    if data_dir and cfg.federation.schema_file:  # relative to the node's folder (check_node_files)
        update["schema_file"] = str(Path(data_dir).expanduser().resolve() / cfg.federation.schema_file)
    fed_cfg = cfg.federation.model_copy(update=update)
    if fed_cfg.clients_per_domain == 1:
        setup = setup_for(cfg.model_copy(update={"federation": fed_cfg}), target)
        for client in setup.clients:
            if client.domain == domain:
                return client
    fed = prepare(load_federation(fed_cfg, cfg.seed), target)
    if domain not in fed.domains:
        raise DataError(
            f"node domain {domain!r} not in federation {fed.name!r}; expected one of {', '.join(fed.domains)}"
        )
    if domain == target:
        raise DataError(
            f"node domain {domain!r} is the run's target domain; a client must hold a source domain"
        )
    d = fed.domains[domain]
    client_id = [n for n in fed.domains if n != target].index(domain)
    return ClientPartition(
        client_id, domain, d.x_train, d.y_train, d.x_test, d.y_test, d.groups_train, d.groups_test
    )


def export_domain(path: Path, partition: ClientPartition) -> None:
    """Write a partition as the .npz a deployed node reads via ``data-path``."""
    import io

    from fedlab.core.rundir import write_bytes_atomic

    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        x_train=partition.x_train,
        y_train=partition.y_train,
        x_test=partition.x_test,
        y_test=partition.y_test,
    )
    write_bytes_atomic(Path(path), buf.getvalue())
