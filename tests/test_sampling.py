"""Client sampling, evaluation cadence, engines and Flower internals at small scale."""

from __future__ import annotations

import json

import pytest

from fedlab.config import load_simulation_config
from fedlab.core.errors import ConfigError
from fedlab.runs.simulate import simulate
from fedlab.runtime.flower_compat import check_flower_internals
from server.sampling import is_eval_round, sample_clients

SMALL = {
    "federation.max_per_domain": 120,
    "federation.clients_per_domain": 3,  # 12 clients
    "training.strategy": "fedavg",
    "training.rounds": 3,
    "training.local_steps": 2,
    "training.batch_size": 16,
    "device": "cpu",
}


def _lines(run) -> list[dict]:
    return [json.loads(x) for x in (run.run_dir / "metrics.jsonl").read_text().splitlines()]


def test_flower_internals_fedlab_relies_on_are_unchanged() -> None:
    """Fails loudly when a Flower upgrade moves a name `fedlab.runtime.flower_compat` touches."""
    assert check_flower_internals() == []


def test_sample_clients_is_seeded_and_distinct() -> None:
    ids = range(100)
    a = sample_clients(7, 3, ids, 10)
    assert a == sample_clients(7, 3, reversed(ids), 10)  # order of discovery does not matter
    assert len(set(a)) == 10 and a == sorted(a)
    assert a != sample_clients(7, 4, ids, 10) and a != sample_clients(8, 3, ids, 10)
    assert sample_clients(7, 3, ids, 0) == list(ids) and sample_clients(7, 3, ids, 100) == list(ids)
    assert [r for r in range(1, 8) if is_eval_round(r, 3, 7)] == [3, 6, 7]


def test_sampling_eval_cadence_and_reproducibility(tmp_path) -> None:
    extra = {"training.clients_per_round": 4, "training.eval_every": 2, "training.client_eval": "sampled"}
    cfg = load_simulation_config(None, {**SMALL, **extra})
    a, b = simulate(cfg, out=tmp_path / "a"), simulate(cfg, out=tmp_path / "b")
    la, lb = _lines(a), _lines(b)
    assert [r["round"] for r in la] == [1, 2, 3]
    assert [r["evaluated"] for r in la] == [False, True, True]
    for r in la:
        assert len(r["sampled_clients"]) == 4 and r["clients_ok"] == 4
        trained = {name.split(":")[0] for name in r["client_train"]}
        assert trained == {str(c) for c in r["sampled_clients"]}
    assert "target_acc" not in la[0] and "client_target_acc" not in la[0] and "client_own_acc" not in la[0]
    for r in la[1:]:
        # Group Effect over the clients that trained this round; only they evaluated
        assert set(r["client_target_acc"]) == set(r["client_train"]) == set(r["client_own_acc"])
        mean = sum(r["client_target_acc"].values()) / 4
        assert r["group_effect"] == pytest.approx(r["target_acc"] - mean)
    assert [r["sampled_clients"] for r in la] == [r["sampled_clients"] for r in lb]
    assert la[0]["sampled_clients"] != la[1]["sampled_clients"]
    keys = ("sampled_clients", "target_acc", "client_target_acc", "group_effect", "client_own_acc")
    assert [{k: r.get(k) for k in keys} for r in la] == [{k: r.get(k) for k in keys} for r in lb]
    summary = json.loads((a.run_dir / "summary.json").read_text())
    assert summary["final_target_acc"] == la[-1]["target_acc"] and summary["best_round"] in (2, 3)


def test_client_eval_all_and_none(tmp_path) -> None:
    base = {**SMALL, "training.rounds": 1, "training.clients_per_round": 3}
    every = simulate(
        load_simulation_config(None, {**base, "training.client_eval": "all"}), out=tmp_path / "all"
    )
    none = simulate(
        load_simulation_config(None, {**base, "training.client_eval": "none"}), out=tmp_path / "no"
    )
    (ra,), (rn,) = _lines(every), _lines(none)
    assert len(ra["client_own_acc"]) == 12 and len(ra["client_target_acc"]) == 3
    assert "client_own_acc" not in rn and len(rn["client_target_acc"]) == 3
    assert ra["sampled_clients"] == rn["sampled_clients"]


def test_clients_per_round_larger_than_federation_is_a_config_error(tmp_path) -> None:
    cfg = load_simulation_config(None, {**SMALL, "training.clients_per_round": 13})
    with pytest.raises(ConfigError, match="clients_per_round = 13 exceeds the federation's 12 clients"):
        simulate(cfg, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_process_pool_engine_runs_and_matches_sampling(tmp_path) -> None:
    extra = {"training.clients_per_round": 4, "training.rounds": 2}
    inproc = simulate(load_simulation_config(None, {**SMALL, **extra}), out=tmp_path / "i")
    pool = simulate(
        load_simulation_config(None, {**SMALL, **extra, "engine": "process", "workers": 2}),
        out=tmp_path / "p",
    )
    li, lp = _lines(inproc), _lines(pool)
    assert [r["sampled_clients"] for r in li] == [r["sampled_clients"] for r in lp]
    assert all(r["clients_failed"] == 0 for r in lp)
    # same seeds, same client work: equal up to float summation order across thread counts
    for a, b in zip(li, lp, strict=True):
        assert b["target_acc"] == pytest.approx(a["target_acc"], abs=0.02)


@pytest.mark.slow
def test_flower_runtime_engine_same_numbers_as_direct(tmp_path) -> None:
    extra = {"training.clients_per_round": 4, "training.rounds": 2}
    direct = simulate(load_simulation_config(None, {**SMALL, **extra}), out=tmp_path / "d")
    flower = simulate(
        load_simulation_config(None, {**SMALL, **extra, "engine": "flower"}), out=tmp_path / "f"
    )
    keys = ("sampled_clients", "target_acc", "client_target_acc", "client_own_acc", "group_effect")
    assert [{k: r.get(k) for k in keys} for r in _lines(direct)] == [
        {k: r.get(k) for k in keys} for r in _lines(flower)
    ]


def test_direct_runtime_maps_nodes_to_clients_without_the_handshake(tmp_path, monkeypatch) -> None:
    """fedlab's runtime knows which client each node holds: no query round, same mapping."""
    from flwr.app import ConfigRecord
    from flwr.supercore.run import Run

    import server.sampling
    from clients.app import app
    from fedlab.federation.setup import setup_for
    from fedlab.runtime.backends import InProcessBackend
    from fedlab.runtime.direct import DirectGrid
    from fedlab.runtime.flower_compat import set_task_identity

    cfg = load_simulation_config(None, SMALL)
    setup = setup_for(cfg)
    set_task_identity(1)
    backend = InProcessBackend({})
    backend.build(lambda: app)
    grid = DirectGrid(backend, len(setup.clients), Run.create_empty(run_id=1), run_config=cfg.to_flat())
    config = ConfigRecord({"target": setup.target, "num-classes": 2})
    asked = server.sampling.discover_clients(grid, config, 60)
    known = {node: setup.clients[p].client_id for node, p in grid.node_partitions().items()}
    assert known == asked and len(known) == len(setup.clients)

    def no_handshake(*args, **kwargs):
        raise AssertionError("the client-id handshake was sent")

    monkeypatch.setattr(server.sampling, "discover_clients", no_handshake)
    sampled = load_simulation_config(None, {**SMALL, "training.clients_per_round": 4})
    run = simulate(sampled, out=tmp_path / "r")
    assert all(len(r["sampled_clients"]) == 4 for r in _lines(run))


def test_sampled_rounds_build_messages_only_for_the_sample(tmp_path, monkeypatch) -> None:
    """With k of N per round the strategy builds k train and k evaluate messages, not N."""
    import flwr.serverapp.strategy.fedavg as fedavg_module

    built: list[str] = []
    real = fedavg_module.Message

    def counting(*args, **kwargs):
        msg = real(*args, **kwargs)
        built.append(msg.metadata.message_type)
        return msg

    monkeypatch.setattr(fedavg_module, "Message", counting)
    extra = {"training.rounds": 2, "training.clients_per_round": 3, "training.client_eval": "sampled"}
    run = simulate(load_simulation_config(None, {**SMALL, **extra}), out=tmp_path / "r")
    assert sorted(set(built)) == ["evaluate", "train"]
    assert built.count("train") == 2 * 3 and built.count("evaluate") == 2 * 3
    assert [len(r["client_own_acc"]) for r in _lines(run)] == [3, 3]


def test_fedka_numbers_do_not_depend_on_client_order(tmp_path, monkeypatch) -> None:
    """Clients run one after another in-process and in any order on a pool: the server's steps
    that draw random numbers (FedKA's target embeddings, dropout on) must not see the order."""
    from fedlab.runtime.direct import DirectGrid

    over = {"training.strategy": "fedka", "training.rounds": 2, "federation.clients_per_domain": 1}
    cfg = load_simulation_config(None, {**SMALL, **over})
    forward = _lines(simulate(cfg, out=tmp_path / "f"))
    real = DirectGrid.send_and_receive

    def reversed_order(self, messages, *, timeout=None):
        return list(real(self, list(messages)[::-1], timeout=timeout))[::-1]

    monkeypatch.setattr(DirectGrid, "send_and_receive", reversed_order)
    backward = _lines(simulate(cfg, out=tmp_path / "b"))
    keys = ("target_acc", "client_target_acc", "client_train", "voting_acc", "client_own_acc")
    assert [{k: r.get(k) for k in keys} for r in forward] == [{k: r.get(k) for k in keys} for r in backward]
