"""Issue #27.7: `fedlab deploy local --config` deploys any federation with every setting.

The whole config travels as one run-config value (`fedlab-config`, JSON). Flower's
``--run-config`` parser takes a double-quoted value up to the next double quote, so the JSON goes
as a TOML literal string; these tests parse what fedlab submits with Flower's own parser. Slow:
the COMPAS tabular federation from ../shared/data simulated and deployed (SuperLink + 2
SuperNodes on 127.0.0.1) gives equal metrics and a bitwise-equal `model.pt`.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from flwr.common.config import parse_config_args

from fedlab.config import SimulationConfig
from fedlab.core.errors import FedlabError
from fedlab.deploy.flower_config import run_config_arg
from fedlab.deploy.local import LocalDeployment, LocalOptions
from fedlab.learn.threads import threads_for

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
COMPAS = DATA / "compas" / "compas-scores-two-years.csv"
EXAMPLE_FILE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "compas_federation.toml"
EXAMPLE = tomllib.loads(EXAMPLE_FILE.read_text(encoding="utf-8"))


def _compas(tmp_path: Path, **federation) -> SimulationConfig:
    return SimulationConfig.model_validate(
        {"seed": 0, "out": str(tmp_path / "sim"),
         "federation": {"name": "tabular", "csv": "compas/compas-scores-two-years.csv", "data_dir": str(DATA),
                        "domain_column": "age_cat", "label_column": "two_year_recid", "positive_label": "1",
                        "protected": ["race:Caucasian", "sex:Female"], "max_per_domain": 400,
                        "drop_columns": EXAMPLE["federation"]["drop_columns"],
                        **federation},
         "training": {"strategy": "fedavg", "rounds": 2, "local_steps": 3, "lr": 0.1}}
    )  # fmt: skip


def _submitted(opts: LocalOptions, tmp_path: Path) -> dict:
    deployment = LocalDeployment(opts)
    try:
        return parse_config_args([deployment.submitted])
    finally:
        shutil.rmtree(deployment.workdir)  # made by LocalDeployment itself


def test_the_whole_config_survives_flowers_run_config_parser(tmp_path: Path) -> None:
    cfg = _compas(tmp_path, domain_column="marital status", label_column="O'Brien")  # space, quote
    cfg.training.strategy = "fedka"
    opts = LocalOptions(config=cfg, domains=["a", "b"], out=tmp_path / "dep", sink=lambda line: None)
    parsed = _submitted(opts, tmp_path)
    back = SimulationConfig.from_flat(parsed)
    assert back.federation.domain_column == "marital status"
    assert back.federation.label_column == "O'Brien"
    assert back.training.strategy == "fedka" and back.federation.protected == cfg.federation.protected
    assert back.out == str((tmp_path / "dep").resolve())  # the deployment's out, not the config's
    assert parsed["min-clients"] == 2


def test_flags_without_config_still_submit_flat_keys(tmp_path: Path) -> None:
    opts = LocalOptions(domains=["original", "rotated"], out=tmp_path, sink=lambda line: None)
    parsed = _submitted(opts, tmp_path)
    assert "fedlab-config" not in parsed and parsed["federation"] == "digits"
    assert SimulationConfig.from_flat({**parsed, "fedlab-config": ""}).federation.name == "digits"


def test_a_schema_outside_the_nodes_data_folder_is_refused(tmp_path: Path) -> None:
    cfg = _compas(tmp_path, schema_file=str(tmp_path / "schema.toml"))
    opts = LocalOptions(config=cfg, domains=["a", "b"], out=tmp_path, sink=lambda line: None)
    with pytest.raises(FedlabError, match="reads only its own data folder"):
        _submitted(opts, tmp_path)


def test_value_with_both_quote_kinds_is_refused() -> None:
    with pytest.raises(FedlabError, match="both quote kinds"):
        run_config_arg({"x": "a\"b'c"})


def test_thread_rule_is_shared_by_simulation_and_deployment() -> None:
    assert threads_for(0, "vector") == 1 and threads_for(0, "image") == 0 and threads_for(3, "vector") == 3


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not COMPAS.is_file(), reason=f"{COMPAS} not found (../shared/data)")
def test_tabular_federation_deployed_equals_simulated(tmp_path: Path) -> None:
    import torch

    from fedlab.deploy.local import run_local
    from fedlab.runs.simulate import simulate

    cfg = _compas(tmp_path)
    sim = simulate(cfg, out=tmp_path / "sim")
    result = run_local(LocalOptions(config=cfg, out=tmp_path / "dep", sink=lambda line: None))
    assert result.ok and result.run_dir is not None, result.status
    deployed = json.loads((result.run_dir / "summary.json").read_text())
    for key in ("initial_target_acc", "final_target_acc", "final_group_effect", "best_target_acc"):
        assert deployed[key] == sim.summary[key], key
    assert [c["domain"] for c in deployed["clients"]] == [c["domain"] for c in sim.summary["clients"]]
    a = torch.load(sim.run_dir / "model.pt", weights_only=True)
    b = torch.load(result.run_dir / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
