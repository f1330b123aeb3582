"""Issue #27: the same config and seed give the same metrics and model simulated and deployed.

Quick: a deployed node holding a domain gets exactly the simulation's client of that domain (id,
which seeds its training, and rows). Slow: `fedlab simulate` and `fedlab deploy local` (real
SuperLink + 2 SuperNodes on 127.0.0.1) at 2 rounds give equal summaries and equal `model.pt`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clients.local_data import partition_for
from fedlab.config import SimulationConfig
from fedlab.federation.setup import setup_for

DOMAINS = ["original", "rotated"]


def _sim_config(tmp_path: Path) -> SimulationConfig:
    return SimulationConfig.model_validate(
        {"seed": 0, "out": str(tmp_path), "federation": {"name": "digits", "domains": [*DOMAINS, "colour"]},
         "training": {"strategy": "fedavg", "target": "colour", "rounds": 2, "local_steps": 3}}
    )  # fmt: skip


def test_deployed_node_is_the_simulations_client_of_its_domain(tmp_path: Path) -> None:
    simulated = setup_for(_sim_config(tmp_path)).clients
    # what a deployed node sees: the flat run config of `fedlab deploy local`
    deployed_cfg = SimulationConfig.from_flat(
        {"federation": "digits", "strategy": "fedavg", "target": "colour", "seed": 0, "local-steps": 3}
    )
    for sim in simulated:
        node = partition_for(deployed_cfg, "colour", {"domain": sim.domain})
        assert (node.client_id, node.domain) == (sim.client_id, sim.domain)
        assert np.array_equal(node.x_train, sim.x_train) and np.array_equal(node.y_test, sim.y_test)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_simulate_and_deploy_local_give_the_same_run(tmp_path: Path) -> None:
    import torch

    from fedlab.deploy.local import LocalOptions, run_local
    from fedlab.runs.simulate import simulate

    sim = simulate(_sim_config(tmp_path), out=tmp_path / "sim")
    opts = LocalOptions(nodes=2, rounds=2, strategy="fedavg", target="colour", domains=DOMAINS,
                        local_steps=3, seed=0, out=tmp_path / "deploy", sink=lambda line: None)  # fmt: skip
    result = run_local(opts)
    assert result.ok and result.run_dir is not None, result.status
    deployed = json.loads((result.run_dir / "summary.json").read_text())
    for key in ("initial_target_acc", "final_target_acc", "final_group_effect", "best_target_acc"):
        assert deployed[key] == sim.summary[key], key
    assert [(c["id"], c["domain"]) for c in deployed["clients"]] == [(0, "original"), (1, "rotated")]
    a = torch.load(sim.run_dir / "model.pt", weights_only=True)
    b = torch.load(result.run_dir / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
