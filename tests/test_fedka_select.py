"""`fedka-select` (issue #26): FedKA or FedAvg per target, chosen on the sources' pseudo-targets."""

from __future__ import annotations

import json

import pytest

from fedlab.config import load_simulation_config
from fedlab.core.errors import ConfigError
from fedlab.report.sim.sections import selection_description
from fedlab.runs.select import CANDIDATES, SELECT, Selection, expand
from fedlab.runs.simulate import check_strategy
from fedlab.runs.sweep import run_sweep
from tests.test_strategies import TINY as TINY_STRATEGIES

TINY = {**TINY_STRATEGIES, "federation.domains": ["original", "rotated", "inverted"]}  # two sources each


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


def test_fedka_select_is_the_default_and_a_single_run_records_its_choice(tmp_path) -> None:
    from fedlab.runs.simulate import simulate

    cfg = load_simulation_config(None, {**TINY, "training.target": "inverted"})
    assert cfg.training.strategy == SELECT  # the default strategy since issue #26's variant 23
    result = simulate(cfg, out=tmp_path / "one")
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["strategy"] == SELECT and summary["selection"]["chosen"] in CANDIDATES
    assert set(summary["selection"]["pseudo_targets"]) == {"original", "rotated"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one"]  # the pseudo-task runs left nothing behind


def test_a_deployment_refuses_fedka_select_with_one_line(tmp_path) -> None:
    import subprocess
    import sys

    toml = tmp_path / "fed.toml"
    toml.write_text('[federation]\nname = "digits"\n', encoding="utf-8")  # strategy left at its default
    proc = subprocess.run(
        [sys.executable, "-m", "fedlab.cli", "deploy", "local", "--config", str(toml)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "fedka-select" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fed.toml"]  # nothing written


def test_under_dp_fedka_select_is_refused_before_anything_runs() -> None:
    """Its pseudo-task runs would train on the clients' data again, outside the run's DP budget."""
    cfg = load_simulation_config(None, {**TINY, "dp.enabled": True, "dp.target_epsilon": 3.0})
    with pytest.raises(ConfigError, match="privacy losses compose"):
        check_strategy(cfg)
    check_strategy(cfg, ["fedka", "fedavg"])  # named strategies keep their DP checks only


def test_a_sweep_under_dp_refuses_fedka_select_before_writing(tmp_path) -> None:
    """The Python API's sweep checks its strategies itself, not only through the CLI."""
    cfg = load_simulation_config(None, {**TINY, "dp.enabled": True, "dp.target_epsilon": 3.0})
    with pytest.raises(ConfigError, match="privacy losses compose"):
        run_sweep(cfg, ["inverted"], ["fedavg", SELECT], [0], tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()
