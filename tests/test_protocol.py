"""`--protocol fedka2022`: the reference budget/optimizer, overridable setting by setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fedlab.config import PROTOCOLS, load_simulation_config
from fedlab.core.errors import ConfigError
from fedlab.learn.training import LocalTrainSpec, capped_steps, make_optimizer


def test_fedka2022_preset_values() -> None:
    t = load_simulation_config(None, {"protocol": "fedka2022"}).training
    assert (t.optimizer, t.lr, t.batch_size, t.local_steps, t.rounds) == ("adam", 3e-4, 16, 32, 200)
    assert (t.finetune_steps, t.weight_decay, t.mmd_weight, t.vote_warmup) == (128, 0.0, 1.0, 0.0)
    assert t.max_epochs_per_round == 1.0 and t.target_sample == 512
    # fedlab's departures stay switches at fedlab's defaults
    assert t.vote_target_batchnorm is True and t.vote_select == 0.5 and t.vote_rule == "majority"
    default = load_simulation_config(None).training
    assert (default.optimizer, default.rounds, default.lr) == ("sgd", 10, 0.01)


def test_explicit_values_beat_the_protocol(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('protocol = "fedka2022"\n[training]\nrounds = 30\nvote_select = 1.0\n')
    cfg = load_simulation_config(toml, {"training.local_steps": 8})
    t = cfg.training
    assert cfg.protocol == "fedka2022"
    assert (t.rounds, t.local_steps, t.vote_select) == (30, 8, 1.0)  # TOML, CLI, TOML
    assert (t.lr, t.batch_size, t.optimizer) == (3e-4, 16, "adam")  # protocol
    assert set(PROTOCOLS["fedka2022"]) >= {"training.lr", "training.rounds", "training.finetune_steps"}


def test_adam_and_step_cap() -> None:
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(make_optimizer(params, LocalTrainSpec(optimizer="adam", lr=3e-4)), torch.optim.Adam)
    assert isinstance(make_optimizer(params, LocalTrainSpec()), torch.optim.SGD)
    assert capped_steps(32, 10_000, 16, 1.0) == 32  # large domain: the full 32 batches
    assert capped_steps(32, 126, 16, 1.0) == 8  # small domain: one pass (ceil(126 / 16))
    assert capped_steps(128, 40, 16, 1.0) == 3
    assert capped_steps(32, 126, 16, 0.0) == 32  # no cap


def test_vote_rule_reaches_the_strategy() -> None:
    from server.strategies import StrategySettings, build_strategy, resolve_strategy

    cfg = load_simulation_config(None, {"training": {"strategy": "fedka", "vote_rule": "plurality"}})
    settings = StrategySettings(cfg.training, cfg.seed, num_clients=3)
    strategy = build_strategy(resolve_strategy("fedka"), settings, target=None)  # type: ignore[arg-type]
    assert strategy.server_step.rule == "plurality"
    with pytest.raises(ConfigError, match="vote_rule"):
        load_simulation_config(None, {"training": {"vote_rule": "unanimous"}})
