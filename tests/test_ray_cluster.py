"""`engine = "ray"` + `ray_address`: join an existing two-node Ray cluster on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from fedlab.config import load_simulation_config
from fedlab.runs.simulate import simulate


@pytest.mark.slow
def test_two_node_cluster_places_clients_on_both_nodes(tmp_path) -> None:
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    import ray

    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        node_ids = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        ray.shutdown()
        assert len(node_ids) == 2
        cfg = load_simulation_config(
            None,
            {
                "engine": "ray",
                "ray_address": cluster.address,
                "cpus_per_client": 1.0,
                "device": "cpu",
                "training.strategy": "fedavg",
                "training.rounds": 2,
                "training.local_steps": 2,
                "federation.max_per_domain": 120,
            },
        )
        run = simulate(cfg, out=tmp_path / "run")
        lines = [json.loads(x) for x in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [r["round"] for r in lines] == [1, 2]
        placed = {node for r in lines for node in r["client_worker"].values()}
        print(
            "clients per Ray node:",
            {n: sum(v == n for r in lines for v in r["client_worker"].values()) for n in placed},
        )
        assert placed == node_ids  # clients ran on both nodes
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
