"""Strategies as plug-ins: fedlab's, Flower's built-ins by short name, any class by import path.

Every strategy runs on a federation with target accuracy, per-client accuracy and Group Effect
measured; what a strategy declares (client objective, DP modes) is what the run uses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fedlab.config import load_simulation_config
from fedlab.core.errors import ConfigError
from fedlab.runs.simulate import simulate
from server.strategies import StrategySettings, available, build_strategy, resolve_strategy
from server.strategies.flower import FLOWER_STRATEGIES

TINY = {
    "training.rounds": 1,
    "training.local_steps": 2,
    "training.batch_size": 32,
    "training.target_sample": 64,
    "training.finetune_steps": 2,
    "training.vote_warmup": 0.0,
    "federation.max_per_domain": 80,
}


def _settings(**options) -> StrategySettings:
    cfg = load_simulation_config(None, TINY)
    return StrategySettings(cfg.training, cfg.seed, num_clients=4, options=options)


def test_every_short_name_resolves_and_builds() -> None:
    for name in available():
        plan = resolve_strategy(name)
        strategy = build_strategy(plan, _settings(), target=None)  # type: ignore[arg-type]
        assert strategy.min_train_nodes == 4, name
    assert {"fedadam", "fedyogi", "fedavgm", "fedmedian", "fedtrimmedavg", "krum", "qfedavg"} <= set(
        FLOWER_STRATEGIES
    )


def test_client_mode_and_dp_are_declared_on_the_strategy() -> None:
    assert resolve_strategy("fedprox").client_mode == "prox"
    assert resolve_strategy("fdann").client_mode == "dann"
    assert resolve_strategy("fedadam").client_mode == "ce"
    composed = resolve_strategy("fedadam+fedka")
    assert composed.client_mode == "mmd" and composed.vote and composed.mmd
    assert composed.dp_modes == ("client",)  # votes come from un-noised models: no central DP


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("fedmagic", "unknown strategy 'fedmagic'"),
        ("fedavg+turbo", "unknown add-on 'turbo'"),
        ("fedprox+mmd", "+mmd needs a base whose clients train with plain cross-entropy"),
        ("fedka+vote", "already has a server step"),
        ("nosuchpkg.mod:Thing", "cannot import"),
        ("json:dumps", "not a Flower Message-API Strategy class"),
    ],
)
def test_bad_names_are_one_line_errors(name: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        resolve_strategy(name)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_strategy_options_reach_the_constructor_and_unknown_ones_are_errors() -> None:
    strategy = build_strategy(resolve_strategy("fedadam"), _settings(eta=0.05), target=None)  # type: ignore[arg-type]
    assert strategy.eta == 0.05
    with pytest.raises(ConfigError, match="takes no option 'etta'"):
        build_strategy(resolve_strategy("fedadam"), _settings(etta=0.05), target=None)  # type: ignore[arg-type]
    qffl = build_strategy(resolve_strategy("qfedavg"), _settings(q=0.5), target=None)  # type: ignore[arg-type]
    assert qffl.q == 0.5 and qffl.client_learning_rate == _settings().training.lr


def _summary(tmp_path, name: str, strategy: str, **extra) -> dict:
    cfg = load_simulation_config(None, {**TINY, "training.strategy": strategy, **extra})
    result = simulate(cfg, out=tmp_path / name)
    lines = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    clients = {"0:original", "1:inverted", "2:colour", "3:noisy"}
    assert all(set(r["client_target_acc"]) == clients for r in lines)
    return result.summary


def test_flower_builtins_run_with_group_effect(tmp_path) -> None:
    for strategy in ("fedadam", "fedmedian"):
        s = _summary(tmp_path, strategy, strategy)
        assert s["strategy"] == strategy
        assert s["final_group_effect"] == pytest.approx(
            s["final_target_acc"] - sum(s["final_client_target_acc"].values()) / 4
        )


def test_qfedavg_clients_report_the_global_models_loss(tmp_path) -> None:
    cfg = load_simulation_config(None, {**TINY, "training.strategy": "qfedavg"})
    run = simulate(cfg, out=tmp_path / "q").run_dir
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert all("initial-loss" in stats for stats in line["client_train"].values())
    plain = load_simulation_config(None, {**TINY, "training.strategy": "fedavg"})
    run = simulate(plain, out=tmp_path / "a").run_dir
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert not any("initial-loss" in stats for stats in line["client_train"].values())


def test_fedka_voting_composes_with_fedadam(tmp_path) -> None:
    s = _summary(tmp_path, "composed", "fedadam+fedka")
    assert s["final_voting_acc"] is not None and 0 < s["final_adoption_rate"] <= 1
    assert 0 < s["final_voting_constant_acc"] <= 1  # the votes' constant-label reference reaches the summary


def _readme_strategy() -> str:
    """The code block of README.md's "Add your own strategy"."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    after = readme[readme.index("**Add your own strategy**") :]
    start = after.index("```python\n") + len("```python\n")
    return after[start : after.index("```", start)]


def test_own_strategy_from_a_file_outside_the_project(tmp_path, monkeypatch) -> None:
    """README's example, as a user writes it: under 30 lines, in a folder outside the project."""
    code = _readme_strategy()
    assert len(code.strip().splitlines()) < 30
    pkg = tmp_path / "plugins" / "mystrats"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "half.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    try:
        s = _summary(tmp_path, "own", "mystrats.half:HalfStep")
    finally:
        sys.modules.pop("mystrats.half", None)
        sys.modules.pop("mystrats", None)
    assert s["strategy"] == "mystrats.half:HalfStep"
    assert s["final_group_effect"] == pytest.approx(
        s["final_target_acc"] - sum(s["final_client_target_acc"].values()) / 4
    )
