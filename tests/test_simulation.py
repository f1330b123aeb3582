"""End-to-end simulations on Flower's simulation engine (embedded `digits`)."""

from __future__ import annotations

import json

import pytest

from fedlab.config import load_simulation_config
from fedlab.runs.simulate import simulate

SMALL = {
    "training.rounds": 2,
    "training.local_steps": 4,
    "training.batch_size": 32,
    "training.target_sample": 64,
    "training.finetune_steps": 4,
    "federation.max_per_domain": 120,
}


def _run(tmp_path, name: str, **extra):
    cfg = load_simulation_config(None, {**SMALL, **extra})
    return simulate(cfg, out=tmp_path / name)


def test_fedka_two_rounds_end_to_end_and_same_seed_same_metrics(tmp_path) -> None:
    fedka = {"training.strategy": "fedka", "training.target": "colour", "training.vote_warmup": 0.0}
    a = _run(tmp_path, "a", **fedka)
    b = _run(tmp_path, "b", **fedka)
    for run in (a, b):
        assert sorted(p.name for p in run.run_dir.iterdir()) == [
            "config.toml",
            "metrics.jsonl",
            "model.pt",
            "summary.json",
        ]
    lines = [json.loads(line) for line in (a.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in lines] == [1, 2]
    for r in lines:
        assert set(r["client_target_acc"]) == {"0:original", "1:rotated", "2:inverted", "3:noisy"}
        assert set(r["client_own_acc"]) == set(r["client_target_acc"])
        assert r["group_effect"] == pytest.approx(r["target_acc"] - sum(r["client_target_acc"].values()) / 4)
        # the round's interval over the target test rows is centred on the Group Effect itself
        lo, hi = r["group_effect_ci"]
        assert lo < r["group_effect"] < hi and (lo + hi) / 2 == pytest.approx(r["group_effect"])
        # each client's lead over the global model, paired over the same rows, centred on the accuracies
        for c, (c_lo, c_hi) in r["client_vs_global_ci"].items():
            assert (c_lo + c_hi) / 2 == pytest.approx(r["client_target_acc"][c] - r["target_acc"])
        assert set(r["client_vs_global_ci"]) == set(r["client_target_acc"])
        assert 0 <= r["adoption_rate"] <= 1 and r["voting_alpha"] > 0
        # class-balanced selection adopts about half of the majority-voted samples (rounded up per class)
        assert 0 < r["adoption_rate"] <= r["majority_rate"] <= 1
        assert r["adoption_rate"] >= 0.5 * r["majority_rate"]
    summary = json.loads((a.run_dir / "summary.json").read_text())
    assert summary["final_target_acc"] == lines[-1]["target_acc"]
    # which FedKA ran is recorded: the defaults of fedlab's rule, the warm-up this test set
    keys = ("vote_rule", "vote_select", "vote_target_batchnorm", "finetune_prox", "vote_warmup")
    assert [summary["voting"][k] for k in keys] == ["majority", 0.5, True, 1.0, 0.0]
    assert summary["best_target_acc"] == max(r["target_acc"] for r in lines)
    # reproducibility: identical per-round numbers for the same seed
    other = [json.loads(line) for line in (b.run_dir / "metrics.jsonl").read_text().splitlines()]
    keys = (
        "target_acc",
        "client_target_acc",
        "client_own_acc",
        "group_effect",
        "group_effect_ci",
        "voting_acc",
        "adoption_rate",
    )
    assert [{k: r[k] for k in keys} for r in lines] == [{k: r[k] for k in keys} for r in other]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["fedavg", "fedprox", "fdan", "fdann", "fedka-novote"])
def test_every_strategy_runs(tmp_path, strategy: str) -> None:
    run = _run(tmp_path, strategy, **{"training.strategy": strategy, "training.target": "rotated"})
    lines = (run.run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["strategy"] == strategy and first["target"] == "rotated"
    assert ("voting_acc" in first) is False
    assert json.loads((run.run_dir / "summary.json").read_text())["voting"] is None  # no voting step ran
