"""Local objectives on tiny data: each mode trains, FedProx pulls towards the anchor, DANN runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedlab.learn.models import DigitCNN, DomainDiscriminator, FeatureMLP, grad_reverse
from fedlab.learn.training import (
    LocalTrainSpec,
    accuracy,
    adapt_batchnorm,
    embed,
    finetune_pseudo,
    train_local,
)

CPU = torch.device("cpu")


def _blobs(n: int = 200, d: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.normal(size=(n, d)) + 3 * np.eye(3, d)[y]).astype(np.float32)
    return x, y.astype(np.int64)


@pytest.mark.parametrize("mode", ["ce", "prox", "mmd", "dann"])
def test_each_mode_learns_separable_blobs(mode: str) -> None:
    x, y = _blobs()
    torch.manual_seed(0)
    model = FeatureMLP(10, 3)
    anchors = [p.detach().clone() for p in model.parameters()]
    emb = embed(model, x[:50], CPU)
    disc = DomainDiscriminator(model.embedding_dim) if mode == "dann" else None
    spec = LocalTrainSpec(mode=mode, steps=60, batch_size=32, lr=0.05, proximal_mu=0.01)  # type: ignore[arg-type]
    res = train_local(
        model, x, y, spec, CPU, seed=0, target_embeddings=emb, global_params=anchors, discriminator=disc
    )
    assert res.num_examples == 200
    assert accuracy(model, x, y, CPU) > 0.9
    if mode in ("mmd", "dann"):
        assert res.align > 0


def test_prox_term_keeps_weights_closer_to_anchor() -> None:
    x, y = _blobs()
    dists = {}
    for mu in (0.0, 5.0):
        torch.manual_seed(0)
        model = FeatureMLP(10, 3)
        anchors = [p.detach().clone() for p in model.parameters()]
        spec = LocalTrainSpec(mode="prox", steps=40, lr=0.05, proximal_mu=mu)
        train_local(model, x, y, spec, CPU, seed=0, global_params=anchors)
        dists[mu] = sum(float((p - a).pow(2).sum()) for p, a in zip(model.parameters(), anchors, strict=True))
    assert dists[5.0] < dists[0.0]


def test_training_is_deterministic_for_a_seed() -> None:
    x, y = _blobs()
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = FeatureMLP(10, 3)
        train_local(model, x, y, LocalTrainSpec(steps=10), CPU, seed=3)
        outs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(outs[0], outs[1])


def test_mmd_mode_requires_embeddings() -> None:
    x, y = _blobs()
    with pytest.raises(ValueError, match="target embeddings"):
        train_local(FeatureMLP(10, 3), x, y, LocalTrainSpec(mode="mmd", steps=1), CPU, seed=0)


def test_cnn_shapes_and_finetune() -> None:
    torch.manual_seed(0)
    model = DigitCNN((3, 28, 28), 10)
    x = np.random.default_rng(0).random((16, 3, 28, 28), dtype=np.float32)
    assert embed(model, x, CPU).shape == (16, 100)
    loss = finetune_pseudo(
        model,
        x,
        np.arange(16) % 10,
        steps=2,
        weight=0.5,
        spec=LocalTrainSpec(batch_size=8),
        device=CPU,
        seed=0,
    )
    assert loss > 0
    assert (
        finetune_pseudo(
            model, x, np.arange(16) % 10, steps=2, weight=0.0, spec=LocalTrainSpec(), device=CPU, seed=0
        )
        == 0.0
    )


def test_grad_reverse_flips_gradient() -> None:
    z = torch.ones(3, requires_grad=True)
    grad_reverse(z, 0.5).sum().backward()
    assert torch.allclose(z.grad, torch.full((3,), -0.5))


def test_adapt_batchnorm_reestimates_statistics_on_the_given_inputs_only() -> None:
    torch.manual_seed(0)
    model = FeatureMLP(10, 3)
    x, _ = _blobs(300)
    shifted = x + 5.0  # a target domain whose inputs are offset
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapted = adapt_batchnorm(model, shifted, CPU, batch=100)
    bn = adapted.extractor[1]
    with torch.no_grad():
        pre = adapted.extractor[0](torch.as_tensor(shifted))
    # cumulative average over equal batches = the statistics of the whole input set
    assert torch.allclose(bn.running_mean, pre.mean(0), atol=1e-4)
    assert torch.allclose(bn.running_var, pre.var(0), rtol=1e-2, atol=1e-4)
    assert bn.momentum == model.extractor[1].momentum and not adapted.training
    # the original model is untouched; only BatchNorm buffers differ in the copy
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    changed = {k for k, v in adapted.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {f"extractor.1.{b}" for b in ("running_mean", "running_var", "num_batches_tracked")}
