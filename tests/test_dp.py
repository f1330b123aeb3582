"""DP settings, calibration and accounting (`fedlab.learn.privacy`), without running a federation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from flwr.app import RecordDict
from opacus.accountants import RDPAccountant

from fedlab.config import load_simulation_config
from fedlab.core.errors import ConfigError
from fedlab.learn.models import build_model
from fedlab.learn.privacy import (
    ProxSGD,
    central_epsilon,
    client_dp_round,
    epsilon,
    noise_for_target,
    sample_rate,
    save_history,
)
from fedlab.learn.training import LocalTrainSpec, train_local
from server.strategies import check_dp, resolve_strategy

ON = {"dp.enabled": True}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({**ON}, "exactly one of target_epsilon and noise_multiplier"),
        ({**ON, "dp.target_epsilon": 3.0, "dp.noise_multiplier": 1.0}, "exactly one"),
        ({**ON, "dp.target_epsilon": 0.0}, "dp.target_epsilon"),
        ({**ON, "dp.target_epsilon": -1.0}, "dp.target_epsilon"),
        ({**ON, "dp.noise_multiplier": 0.0}, "dp.noise_multiplier"),
        ({**ON, "dp.target_epsilon": 3.0, "dp.delta": 1.0}, "dp.delta"),
        ({**ON, "dp.target_epsilon": 3.0, "dp.delta": 0.0}, "dp.delta"),
        ({**ON, "dp.target_epsilon": 3.0, "dp.max_grad_norm": 0.0}, "dp.max_grad_norm"),
        ({**ON, "dp.mode": "central", "dp.target_epsilon": 3.0}, "central DP takes a noise_multiplier"),
        ({**ON, "dp.target_epsilon": 3.0, "dp.poisson": False}, "Poisson"),
    ],
)
def test_bad_dp_settings_are_one_line_config_errors(overrides, needle) -> None:
    with pytest.raises(ConfigError) as exc:
        load_simulation_config(None, overrides)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_unsupported_strategy_rejected_before_data() -> None:
    cfg = load_simulation_config(None, {**ON, "dp.target_epsilon": 3.0, "training.strategy": "fdann"})
    with pytest.raises(ConfigError, match="fdann"):
        check_dp(resolve_strategy(cfg.training.strategy), cfg.dp)
    central = load_simulation_config(
        None, {**ON, "dp.mode": "central", "dp.noise_multiplier": 1.0, "training.strategy": "fedka"}
    )
    with pytest.raises(ConfigError, match="un-noised"):
        check_dp(resolve_strategy(central.training.strategy), central.dp)
    # declared on the strategies: FedAvg-family averages keep central DP, robust or loss-weighted
    # aggregations do not, and q-FFL keeps neither (its weights read un-noised client losses)
    assert resolve_strategy("fedavg").dp_modes == ("client", "central")
    assert resolve_strategy("fedadam").dp_modes == ("client",)
    assert resolve_strategy("qfedavg").dp_modes == ()
    assert resolve_strategy("fedavg+fedka").dp_modes == ("client",)


def test_cli_dp_flags_without_dp_are_rejected() -> None:
    from fedlab.cli.simulate import _privacy_overrides

    with pytest.raises(ConfigError, match="without --dp"):
        _privacy_overrides(False, None, 3.0, None, None, None, None)
    assert _privacy_overrides(True, None, 3.0, None, 2.0, None, "k=10") == {
        "dp.enabled": True,
        "dp.target_epsilon": 3.0,
        "dp.max_grad_norm": 2.0,
        "anonymize.spec": "k=10",
    }


def test_noise_calibration_reaches_but_never_exceeds_the_target() -> None:
    for target, n, batch, steps in [(1.0, 1200, 64, 100), (8.0, 300, 32, 20)]:
        q = sample_rate(n, batch)
        assert q == 1 / math.ceil(n / batch)
        sigma = noise_for_target(target, 1 / n, q, steps)
        spent = epsilon([(sigma, q, steps)], 1 / n)
        assert 0.95 * target <= spent <= target


def _round(cfg, model, x, y, state, seed):
    dp = client_dp_round(cfg.dp, cfg.training, model, len(y), state, None)
    spec = LocalTrainSpec(steps=cfg.training.local_steps, batch_size=cfg.training.batch_size)
    exhausted = dp.would_exceed_budget()
    if not exhausted:
        train_local(
            model,
            x,
            y,
            spec,
            torch.device("cpu"),
            seed,
            optimizer_factory=dp.optimizer_factory,
            batch_sampler=dp,
        )
        save_history(state, dp.finish())
    return dp, exhausted


def test_reported_epsilon_equals_opacus_rdp_accountant_and_accumulates() -> None:
    cfg = load_simulation_config(
        None,
        {
            **ON,
            "dp.noise_multiplier": 1.1,
            "training.rounds": 3,
            "training.local_steps": 4,
            "training.batch_size": 16,
        },
    )
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 12)).astype(np.float32), rng.integers(0, 2, 100)
    model = build_model("vector", (12,), 2, norm="group")
    state = RecordDict()
    spent = []
    for r in range(3):
        dp, exhausted = _round(cfg, model, x, y, state, seed=r)
        assert not exhausted
        spent.append(dp.spent)
    q = 1 / math.ceil(100 / 16)
    independent = RDPAccountant()
    independent.history = [(1.1, q, 12)]
    assert spent[-1] == pytest.approx(independent.get_epsilon(delta=1 / 100), rel=1e-9)
    assert spent[0] < spent[1] < spent[2]


def test_budget_exhausted_client_stops_and_keeps_weights() -> None:
    cfg = load_simulation_config(
        None, {**ON, "dp.noise_multiplier": 1.0, "training.local_steps": 3, "training.batch_size": 10}
    )
    one_round = epsilon([(1.0, sample_rate(50, 10), 3)], 1 / 50)
    cfg.dp.epsilon_budget = one_round * 1.001
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 6)).astype(np.float32), rng.integers(0, 2, 50)
    model = build_model("vector", (6,), 2, norm="group")
    state = RecordDict()
    _, exhausted = _round(cfg, model, x, y, state, seed=0)
    assert not exhausted
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dp, exhausted = _round(cfg, model, x, y, state, seed=1)
    assert exhausted and dp.spent == pytest.approx(one_round)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_central_epsilon_composes_rounds_without_amplification() -> None:
    acc = RDPAccountant()
    acc.history = [(1.5, 1.0, 4)]
    assert central_epsilon(1.5, 4, 0.1) == pytest.approx(acc.get_epsilon(0.1))
    assert central_epsilon(1.5, 0, 0.1) == 0.0


def test_prox_term_added_after_privatization() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    anchor = torch.zeros(3)
    opt = ProxSGD([p], [anchor], mu=0.5, lr=1.0)
    p.grad = torch.zeros(3)
    opt.step()
    assert torch.allclose(p.detach(), torch.full((3,), 0.5))


def test_group_norm_model_builds_for_every_kind_and_validates() -> None:
    from fedlab.learn.privacy import validate_model

    for kind, shape in [("vector", (95,)), ("image", (3, 28, 28))]:
        validate_model(build_model(kind, shape, 2, norm="group"))
    with pytest.raises(ConfigError, match="not DP-SGD compatible"):
        validate_model(build_model("vector", (5,), 2, norm="batch"))
