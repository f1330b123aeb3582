"""Class-weighted matching (`training.mmd_reweight`, issue #26 variant 20): weighted MK-MMD, the
per-client class weights, the server's predicted classes and the run's record of which matching ran."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fedlab.config import load_simulation_config
from fedlab.core.errors import ConfigError
from fedlab.learn.mmd import class_weights, gaussian_kernel_matrix, mk_mmd
from fedlab.learn.models import FeatureMLP
from fedlab.learn.training import LocalTrainSpec, train_local
from fedlab.report.sim.sections import matching_description
from fedlab.runs.simulate import check_scale, simulate


def test_weighted_mmd_is_the_discrepancy_to_the_reweighted_target() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(12, 3), torch.randn(9, 3) + 0.7
    # uniform (or all-zero) weights are the unweighted estimate
    plain = float(mk_mmd(x, y))
    assert float(mk_mmd(x, y, target_weights=torch.full((9,), 3.0))) == pytest.approx(plain, rel=1e-6)
    assert float(mk_mmd(x, y, target_weights=torch.zeros(9))) == pytest.approx(plain, rel=1e-6)
    # otherwise: mean K_ss + wᵀ K_tt w − 2 mean_s K_st w, with w normalised, on the same kernels
    w = torch.arange(1.0, 10.0)
    k = gaussian_kernel_matrix(x, y)
    v = w / w.sum()
    expected = k[:12, :12].mean() + v @ k[12:, 12:] @ v - 2 * (k[:12, 12:] @ v).mean()
    assert float(mk_mmd(x, y, target_weights=w)) == pytest.approx(float(expected), rel=1e-6)


def test_class_weights_give_the_target_sample_the_clients_class_mix() -> None:
    own = np.array([0, 0, 0, 1])  # the client: 75 % class 0, no class 2
    predicted = np.array([0, 1, 1, 1, 2])  # the target rows' predicted classes
    w = class_weights(own, predicted, 3)
    assert w.tolist() == pytest.approx([3.75, 5 / 12, 5 / 12, 5 / 12, 0.0])
    mix = np.bincount(predicted, weights=w, minlength=3) / w.sum()
    assert mix.tolist() == pytest.approx([0.75, 0.25, 0.0])  # a class the client lacks weighs nothing


def test_class_weighting_removes_the_pull_of_a_different_label_mix() -> None:
    """The reason for the switch: two domains with the same class-conditional features but opposite
    label rates (label shift) differ in MMD only through the mix; weighting by class removes it."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [4.0, 4.0]])

    def domain(labels: np.ndarray) -> torch.Tensor:
        rows = centres[labels] + rng.normal(scale=0.3, size=(len(labels), 2))
        return torch.as_tensor(rows, dtype=torch.float32)

    ys, yt = np.array([0] * 150 + [1] * 50), np.array([0] * 50 + [1] * 150)
    xs, xt = domain(ys), domain(yt)
    plain = float(mk_mmd(xs, xt))
    weighted = float(mk_mmd(xs, xt, target_weights=torch.as_tensor(class_weights(ys, yt, 2))))
    assert weighted < plain / 10


def test_local_training_uses_the_predicted_classes_only_when_sent() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(64, 6)).astype(np.float32), np.array([0] * 48 + [1] * 16)
    spec = LocalTrainSpec(mode="mmd", steps=5, batch_size=16, lr=0.1)
    emb = rng.normal(size=(32, FeatureMLP(6, 2).embedding_dim)).astype(np.float32)
    predicted = np.array([0] * 8 + [1] * 24)

    def run(pred: np.ndarray | None) -> tuple[float, list[torch.Tensor]]:
        torch.manual_seed(0)
        model = FeatureMLP(6, 2)
        cpu = torch.device("cpu")
        out = train_local(model, x, y, spec, cpu, seed=3, target_embeddings=emb, target_predicted=pred)
        return out.align, [p.detach().clone() for p in model.parameters()]

    plain, weighted, again = run(None), run(predicted), run(predicted)
    assert weighted[0] != plain[0]
    assert weighted[0] == again[0]
    assert all(torch.equal(a, b) for a, b in zip(weighted[1], again[1], strict=True))


def test_class_weighted_matching_is_refused_with_client_dp() -> None:
    cfg = load_simulation_config(
        None,
        {
            "training.mmd_reweight": "pseudo",
            "dp.enabled": True,
            "dp.noise_multiplier": 1.0,
        },
    )
    with pytest.raises(ConfigError, match=r"mmd_reweight .* DP-SGD"):
        check_scale(cfg, 4)


def test_a_run_records_and_reports_which_matching_ran(tmp_path) -> None:
    small = {
        "training.rounds": 2,
        "training.local_steps": 3,
        "training.batch_size": 32,
        "training.target_sample": 48,
        "federation.max_per_domain": 100,
        "training.strategy": "fdan",
    }
    runs = {}
    for reweight in ("off", "pseudo"):
        cfg = load_simulation_config(None, {**small, "training.mmd_reweight": reweight})
        runs[reweight] = simulate(cfg, out=tmp_path / reweight).run_dir
    summaries = {k: json.loads((d / "summary.json").read_text()) for k, d in runs.items()}
    assert summaries["off"]["matching"] == {"target_sample": 48, "mmd_weight": 1.0, "mmd_reweight": "off"}
    assert summaries["pseudo"]["matching"]["mmd_reweight"] == "pseudo"
    # the clients did align differently: the per-round alignment losses differ
    align = {
        k: [r["client_train"] for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines())]
        for k, d in runs.items()
    }
    assert align["off"] != align["pseudo"]
    assert "class-weighted" in matching_description(summaries["pseudo"]["matching"])
    assert "class-weighted" not in matching_description(summaries["off"]["matching"])
    fedavg = simulate(
        load_simulation_config(None, {**small, "training.strategy": "fedavg"}), out=tmp_path / "fedavg"
    ).run_dir
    assert json.loads((fedavg / "summary.json").read_text())["matching"] is None


def test_the_server_predicts_the_rows_it_embeds_without_reading_a_label() -> None:
    from fedlab.wire.arrays import state_record
    from server.target import TargetDomain

    rng = np.random.default_rng(2)
    x = rng.normal(size=(90, 6)).astype(np.float32)
    hidden = np.full(90, -1)  # a label read anywhere would break the prediction or the check below
    torch.manual_seed(0)
    model = FeatureMLP(6, 3)
    target = TargetDomain(
        "t",
        x,
        hidden,
        x[:5],
        np.zeros(5, dtype=np.int64),
        3,
        lambda: FeatureMLP(6, 3),
        torch.device("cpu"),
        seed=4,
    )
    arrays = state_record(model.state_dict())
    emb = target.embeddings(arrays, 40, server_round=3)
    predicted = target.embedded_predictions(arrays, 40, server_round=3)
    rows = target._embedded_rows(40, 3)
    assert len(emb) == len(predicted) == len(rows) == 40 and set(predicted) <= {0, 1, 2}
    from fedlab.learn.training import adapt_batchnorm, predict

    expected = predict(adapt_batchnorm(model, x, torch.device("cpu")), x[rows], torch.device("cpu"))
    assert np.array_equal(predicted, expected)
