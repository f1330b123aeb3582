"""Issue #27: a deployed SuperNode reads only the data its operator configured.

The run config comes from the run's submitter; it can never make a SuperNode read a file the
node's operator did not give it (``data-path`` / ``data-dir`` in the node config), and the error
that travels back to the server never quotes the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from clients.local_data import partition_for
from fedlab.config import SimulationConfig
from fedlab.core.errors import DataError


def _tabular(csv: str, data_dir: str = "") -> SimulationConfig:
    return SimulationConfig.model_validate(
        {"federation": {"name": "tabular", "csv": csv, "data_dir": data_dir, "domain_column": "race",
                        "label_column": "income", "positive_label": ">50K"}}
    )  # fmt: skip


def test_run_config_cannot_make_a_node_without_data_read_a_file(tmp_path: Path, caplog) -> None:
    secret = tmp_path / "os-release"
    secret.write_text('PRETTY_NAME="Secret Linux"\nID=secret\n')
    caplog.set_level(logging.ERROR, logger="fedlab.clients")
    with pytest.raises(DataError) as err:
        partition_for(_tabular(str(secret)), "White", {"domain": "Black"})
    msg = str(err.value)
    assert "could not load its configured data" in msg
    assert "PRETTY_NAME" not in msg and "Secret" not in msg and str(secret) not in msg
    assert "given no data" in caplog.text  # the operator's log says why


def test_run_config_data_dir_is_ignored_and_paths_must_stay_inside(tmp_path: Path, caplog) -> None:
    site = tmp_path / "site"
    site.mkdir()
    outside = tmp_path / "other.csv"
    outside.write_text("race,income,age\n")
    caplog.set_level(logging.ERROR, logger="fedlab.clients")
    for csv, why in ((str(outside), "relative name"), ("../other.csv", "relative name")):
        with pytest.raises(DataError, match="could not load its configured data"):
            node = {"domain": "Black", "data-dir": str(site)}
            partition_for(_tabular(csv, data_dir=str(tmp_path)), "White", node)
        assert why in caplog.text
    # the run config's own data_dir names the folder holding other.csv: still refused without node data
    with pytest.raises(DataError):
        partition_for(_tabular("other.csv", data_dir=str(tmp_path)), "White", {"domain": "Black"})


def test_embedded_federation_needs_no_node_data() -> None:
    cfg = SimulationConfig.model_validate({"federation": {"name": "digits"}})
    part = partition_for(cfg, "rotated", {"domain": "original", "client-id": 7})
    assert part.domain == "original" and part.client_id == 7 and len(part.y_train) > 0


def test_schema_named_by_the_run_config_stays_inside_the_node_folder(tmp_path: Path, caplog) -> None:
    site = tmp_path / "site"
    site.mkdir()
    cfg = _tabular("adult.csv")
    cfg.federation.schema_file = str(tmp_path / "elsewhere.toml")  # absolute: a file on the site
    caplog.set_level(logging.ERROR, logger="fedlab.clients")
    with pytest.raises(DataError, match="could not load its configured data"):
        partition_for(cfg, "White", {"domain": "Black", "data-dir": str(site)})
    assert "federation.schema" in caplog.text and "relative name" in caplog.text
