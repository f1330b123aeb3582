"""`fedka-select` (issue #26): FedKA or FedAvg per target, chosen on the sources' pseudo-targets."""

from __future__ import annotations

import json

from fedlab.config import load_simulation_config
from fedlab.report.sim.sections import selection_description
from fedlab.runs.select import CANDIDATES, SELECT, Selection, expand
from fedlab.runs.sweep import run_sweep

TINY = {
    "training.rounds": 1,
    "training.local_steps": 2,
    "training.batch_size": 32,
    "training.target_sample": 64,
    "training.finetune_steps": 2,
    "training.vote_warmup": 0.0,
    "federation.max_per_domain": 80,
    "federation.domains": ["original", "rotated", "inverted"],
}


def test_the_choice_follows_the_mean_pseudo_target_gain_and_ties_keep_fedavg() -> None:
    win = Selection("fedka", {"a": {"fedavg": 0.5, "fedka": 0.7}, "b": {"fedavg": 0.6, "fedka": 0.5}})
    assert abs(win.gain - 0.05) < 1e-12
    assert Selection("fedavg").gain is None and CANDIDATES[0] == "fedavg"
    assert expand(["fedavg", SELECT]) == ["fedavg", "fedavg", "fedka"]
    assert "no pseudo-task" in selection_description(Selection("fedavg").record())
    line = selection_description(win.record())
    assert line.startswith("fedka: FedKA − FedAvg +5.0 pp") and "2 source domains" in line


def test_a_sweep_chooses_once_per_target_from_runs_without_the_target(tmp_path) -> None:
    cfg = load_simulation_config(None, TINY)
    _, runs, _ = run_sweep(cfg, ["inverted"], [SELECT, "fedavg", "fedka"], [0, 1], tmp_path / "sw")
    picked = runs[runs["strategy"] == SELECT].reset_index(drop=True)
    summaries = [
        json.loads((tmp_path / "sw" / f"{SELECT}-inverted-s{s}" / "summary.json").read_text()) for s in (0, 1)
    ]
    sel = summaries[0]["selection"]
    assert sel == summaries[1]["selection"]  # one choice per target, reused for every seed
    assert set(sel["pseudo_targets"]) == {"original", "rotated"}  # the sources, never the target
    gain = sum(p["fedka"] - p["fedavg"] for p in sel["pseudo_targets"].values()) / 2
    assert sel["chosen"] == ("fedka" if gain > 0 else "fedavg") and abs(sel["gain"] - gain) < 1e-12
    # the selecting run is the chosen strategy's run: the same accuracies as that strategy's own run
    same = runs[runs["strategy"] == sel["chosen"]].reset_index(drop=True)
    assert list(picked["final_target_acc"]) == list(same["final_target_acc"])
    pseudo = tmp_path / "sw" / "selection" / "inverted"
    assert sorted(p.name for p in pseudo.iterdir()) == [
        "fedavg-original", "fedavg-rotated", "fedka-original", "fedka-rotated"
    ]  # fmt: skip
    config = (pseudo / "fedka-rotated" / "config.toml").read_text()
    assert "inverted" not in config.split("[training]")[0]  # the target's domain is not in the federation
