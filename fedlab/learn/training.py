"""Local training and evaluation loops shared by clients and the server.

One function per job: `train_local` (a client's round: cross-entropy plus the
strategy's extra term), `finetune_pseudo` (FedKA's server-side fine-tuning on voted
pseudo-labels), `predict`/`accuracy` (eval mode) and `embed` (eval mode unless ``train_mode``).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedlab.core.seeding import seed_torch
from fedlab.learn.mmd import class_weights, mk_mmd, ramp
from fedlab.learn.models import DomainDiscriminator, DomainModel, grad_reverse

Mode = Literal["ce", "prox", "mmd", "dann"]


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; asking for CUDA without it is a one-line ConfigError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from fedlab.core.errors import ConfigError

        raise ConfigError("device 'cuda' requested but torch.cuda.is_available() is False; use --device cpu")
    return torch.device(device)


def on_device(module: nn.Module, device: torch.device) -> nn.Module:
    """`module.to(device)`, skipping its walk over every submodule when nothing would move.

    Why: a client calls this three or four times per round (train, evaluate, score), and for
    the tabular MLP the walk alone (~0.25 ms) was a tenth of a client update's own work."""
    tensors = itertools.chain(module.parameters(), module.buffers())
    if all(t.device == device for t in tensors):
        return module
    return module.to(device)


@dataclass
class LocalTrainSpec:
    """What one client does in one round."""

    mode: Mode = "ce"
    steps: int = 20
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    proximal_mu: float = 0.0
    mmd_weight: float = 1.0
    optimizer: str = "sgd"  # "sgd" (with momentum) or "adam" (the FedKA reference)
    progress_start: float = 0.0  # global training progress p at the first local step
    progress_end: float = 1.0  # ... and after the last


@dataclass
class LocalTrainResult:
    """What a client's round reports: rows, mean loss and its cross-entropy and alignment parts, the ramp
    value."""
    num_examples: int
    loss: float
    ce: float
    align: float  # MMD or domain-classifier loss (0 for plain CE)
    alpha: float  # ramp value at the end of the round


class BatchSampler:
    """Seeded sampling of mini-batches with reshuffling per epoch (no torch DataLoader overhead)."""

    def __init__(self, n: int, batch_size: int, generator: np.random.Generator) -> None:
        self.n, self.batch_size, self.rng = n, min(batch_size, n), generator
        self._order = self.rng.permutation(n)
        self._pos = 0

    def next(self) -> np.ndarray:
        """Indices of the next mini-batch (a fresh permutation when the epoch is used up)."""
        if self._pos + self.batch_size > self.n:
            self._order = self.rng.permutation(self.n)
            self._pos = 0
        idx = self._order[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx


def capped_steps(steps: int, n: int, batch_size: int, max_epochs: float) -> int:
    """`steps`, or fewer so that at most `max_epochs` passes over `n` rows are made (0 = no cap)."""
    if max_epochs <= 0 or n <= 0:
        return steps
    return max(1, min(steps, math.ceil(max_epochs * n / min(batch_size, n))))


def batchnorms(model: nn.Module) -> list[nn.Module]:
    """The model's BatchNorm layers: the one place that says what counts as one, for every step
    that treats their statistics specially (AdaBN, train-mode embedding, fine-tuning that keeps them)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def rows_needed_to_train(model: nn.Module) -> int:
    """BatchNorm in training mode needs two rows per batch, and a client's batches have
    min(batch_size, its rows) rows: with BatchNorm a one-row client cannot take a step."""
    return 2 if batchnorms(model) else 1


def make_optimizer(params, spec: LocalTrainSpec) -> torch.optim.Optimizer:
    """The optimizer the spec names: SGD with momentum (fedlab's default) or Adam (the FedKA reference)."""
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)


def train_local(
    model: DomainModel,
    x: np.ndarray,
    y: np.ndarray,
    spec: LocalTrainSpec,
    device: torch.device,
    seed: int,
    target_embeddings: np.ndarray | None = None,
    global_params: list[torch.Tensor] | None = None,
    discriminator: DomainDiscriminator | None = None,
    optimizer_factory: Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None = None,
    batch_sampler: Any | None = None,
    target_predicted: np.ndarray | None = None,
) -> LocalTrainResult:
    """Train `model` in place for `spec.steps` mini-batch steps.

    mode "ce": cross-entropy; "prox": + μ/2‖w − w_global‖²; "mmd": + α·λ·MK-MMD(source
    features, received target embeddings); "dann": + α·λ·BCE of a domain classifier fed
    through gradient reversal (source features) and the target embeddings.

    `target_predicted` (the server's predicted class per target embedding, mode "mmd"): the MMD
    weights the target rows by `class_weights` of this client's labels (class-weighted matching,
    ``training.mmd_reweight``); None aligns to the sample as drawn.

    `batch_sampler` (an object with ``next() -> indices``) replaces the seeded shuffling, e.g.
    with the Poisson batches of DP-SGD (`fedlab.learn.privacy.ClientDPRound`); it is consulted only
    after `optimizer_factory` ran. Poisson batches can be empty; the step still runs so DP noise
    is added, with a zero loss.
    """
    if len(y) == 0:
        raise ValueError("client has no training data")
    if len(y) < rows_needed_to_train(model):
        raise ValueError(f"client has {len(y)} training row; the model's BatchNorm layers need 2 per batch")
    rng = np.random.default_rng(seed)
    seed_torch(seed)
    on_device(model, device).train()
    params = list(model.parameters())
    if discriminator is not None:
        discriminator.to(device).train()
        params += list(discriminator.parameters())
    opt = optimizer_factory(params) if optimizer_factory else make_optimizer(params, spec)
    sampler = batch_sampler if batch_sampler is not None else BatchSampler(len(y), spec.batch_size, rng)
    tgt = None
    if spec.mode in ("mmd", "dann"):
        if target_embeddings is None or len(target_embeddings) < 2:
            raise ValueError(f"mode {spec.mode!r} needs target embeddings from the server")
        tgt = torch.as_tensor(target_embeddings, dtype=torch.float32, device=device)
        tgt_sampler = BatchSampler(len(tgt), spec.batch_size, rng)
    tgt_w = None
    if spec.mode == "mmd" and target_predicted is not None:
        num_classes = int(max(int(np.max(y)), int(np.max(target_predicted)))) + 1
        tgt_w = torch.as_tensor(class_weights(y, target_predicted, num_classes), device=device)
    anchors = [p.detach().to(device) for p in global_params] if global_params is not None else None

    tot_loss = tot_ce = tot_align = 0.0
    alpha = 0.0
    for step in range(spec.steps):
        idx = sampler.next()
        xb = torch.as_tensor(x[idx], device=device)
        yb = torch.as_tensor(y[idx], device=device)
        progress = spec.progress_start + (spec.progress_end - spec.progress_start) * (step + 1) / spec.steps
        alpha = ramp(progress)
        z = model.features(xb)
        logits = model.head(z)
        ce = F.cross_entropy(logits, yb) if len(idx) else logits.sum() * 0.0
        align = torch.zeros((), device=device)
        if spec.mode == "mmd" and tgt is not None and len(idx):
            t_idx = tgt_sampler.next()
            align = mk_mmd(z, tgt[t_idx], target_weights=None if tgt_w is None else tgt_w[t_idx])
        elif spec.mode == "dann" and tgt is not None and discriminator is not None and len(idx):
            zt = tgt[tgt_sampler.next()]
            logits = discriminator(torch.cat([grad_reverse(z, alpha), zt]))
            labels = torch.cat([torch.ones(len(z)), torch.zeros(len(zt))]).to(device)
            align = F.binary_cross_entropy_with_logits(logits, labels)
        loss = ce + (alpha * spec.mmd_weight if spec.mode == "mmd" else spec.mmd_weight) * align
        if spec.mode == "prox" and anchors is not None and spec.proximal_mu > 0:
            prox = sum((p - a).pow(2).sum() for p, a in zip(model.parameters(), anchors, strict=True))
            loss = loss + spec.proximal_mu / 2 * prox
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tot_loss += float(loss.detach())
        tot_ce += float(ce.detach())
        tot_align += float(align.detach())
    n = spec.steps
    return LocalTrainResult(len(y), tot_loss / n, tot_ce / n, tot_align / n, alpha)


@torch.no_grad()
def predict_logits(model: DomainModel, x: np.ndarray, device: torch.device, batch: int = 512) -> np.ndarray:
    """Logits of `x` in eval mode, in batches (no gradients)."""
    on_device(model, device).eval()
    out = [model(torch.as_tensor(x[i : i + batch], device=device)).cpu() for i in range(0, len(x), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


@torch.no_grad()
def mean_loss(
    model: DomainModel, x: np.ndarray, y: np.ndarray, device: torch.device, batch: int = 512
) -> float:
    """Mean cross-entropy of `model` in eval mode on (x, y): a client's loss F_k(w) at the received
    global weights, which q-FFL's aggregation weighs updates by (Li et al. 2020)."""
    if len(y) == 0:
        return float("nan")
    logits = torch.as_tensor(predict_logits(model, x, device, batch))
    return float(F.cross_entropy(logits, torch.as_tensor(y, dtype=torch.long), reduction="mean"))


def predict(model: DomainModel, x: np.ndarray, device: torch.device) -> np.ndarray:
    """Predicted classes of `x` (eval mode)."""
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    return predict_logits(model, x, device).argmax(axis=1)


def accuracy(model: DomainModel, x: np.ndarray, y: np.ndarray, device: torch.device) -> float:
    """Accuracy of `model` on (x, y); NaN for an empty split."""
    if len(y) == 0:
        return float("nan")
    return accuracy_of(predict(model, x, device), y)


def accuracy_of(y_pred: np.ndarray, y: np.ndarray) -> float:
    """`accuracy` from predictions already made (one forward pass for accuracy and fairness)."""
    return float((y_pred == y).mean()) if len(y) else float("nan")


@torch.no_grad()
def embed(
    model: DomainModel, x: np.ndarray, device: torch.device, batch: int = 512, train_mode: bool = False
) -> np.ndarray:
    """Embeddings of `x`: what the FedKA server sends instead of raw target data.

    With ``train_mode=True`` the features are computed exactly as the clients compute their
    source features during local training: BatchNorm normalises with the sample's own
    statistics (running statistics left untouched) and dropout is active. The MMD then
    compares two feature distributions produced the same way; with eval-mode target
    features it mostly measures the normalisation and dropout-scaling mismatch, and
    minimising it collapses the source features.
    """
    model = on_device(model, device)
    model.eval()
    saved: list[tuple[nn.Module, float | None]] = []
    if train_mode:
        model.train()
        for m in batchnorms(model):
            saved.append((m, m.momentum))
            m.momentum = 0.0  # batch statistics, running statistics left untouched
    try:
        out = [
            model.features(torch.as_tensor(x[i : i + batch], device=device)).cpu()
            for i in range(0, len(x), batch)
        ]
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()
    return torch.cat(out).numpy().astype(np.float32)


@torch.no_grad()
def adapt_batchnorm(model: DomainModel, x: np.ndarray, device: torch.device, batch: int = 256) -> DomainModel:
    """AdaBN: a copy of `model` whose BatchNorm statistics are re-estimated on `x`.

    A model trained on source domains normalises target inputs with source statistics; a
    shift in intensity or colour then moves every activation. Re-estimating the statistics on
    the (unlabeled) target inputs removes that first-order shift without touching any weight.
    Dropout stays off; a model without BatchNorm is returned unchanged (as a copy).
    """
    adapted = copy.deepcopy(model).to(device)
    norms = batchnorms(adapted)
    if not norms or len(x) < 2:
        return adapted.eval()
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    adapted.eval()
    for m in norms:
        m.train()
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        if len(chunk) >= 2:
            adapted(torch.as_tensor(chunk, device=device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return adapted.eval()


def finetune_pseudo(
    model: DomainModel,
    x: np.ndarray,
    y_pseudo: np.ndarray,
    steps: int,
    weight: float,
    spec: LocalTrainSpec,
    device: torch.device,
    seed: int,
    scope: Literal["all", "head"] = "all",
    prox: float = 0.0,
    carried: dict[str, Any] | None = None,
    batchnorm: Literal["adapt", "keep"] = "adapt",
) -> float:
    """FedKA server step: fine-tune the global model on voted pseudo-labels, loss × α.

    `scope = "head"` trains the classifier only: the feature extractor keeps what the clients
    learned on labelled source data and the MMD alignment, which fine-tuning every layer on
    pseudo-labels can erase. `prox` > 0 adds μ/2‖w − w_start‖² (w_start: the averaged model),
    limiting how far a few hundred pseudo-labelled samples can pull the model. `carried` (a dict
    the caller keeps between calls) carries the optimizer's state from one call to the next, as
    one optimizer kept over the whole run does (the reference notebook's global Adam).
    `batchnorm = "keep"` runs the BatchNorm layers in eval mode: the fine-tuning normalises with, and
    leaves, the averaged model's statistics, instead of replacing them with those of the adopted
    target rows ("adapt", the reference: train mode moves them towards the target). Under label shift
    the target's statistics absorb the change in class mix and shift every prediction (issue #26)."""
    if steps == 0 or len(y_pseudo) == 0 or weight <= 0:
        return 0.0
    rng = np.random.default_rng(seed)
    seed_torch(seed)
    on_device(model, device).train()
    if batchnorm == "keep":
        for m in batchnorms(model):
            m.eval()
    params = list(model.classifier.parameters() if scope == "head" else model.parameters())
    anchors = [p.detach().clone() for p in params] if prox > 0 else None
    opt = make_optimizer(params, spec)
    if carried is not None and "optimizer" in carried:
        opt.load_state_dict(carried["optimizer"])
    sampler = BatchSampler(len(y_pseudo), spec.batch_size, rng)
    total = 0.0
    for _ in range(steps):
        idx = sampler.next()
        if len(idx) < 2:  # BatchNorm needs 2+ samples
            break
        xb = torch.as_tensor(x[idx], device=device)
        yb = torch.as_tensor(y_pseudo[idx], device=device)
        loss = weight * F.cross_entropy(model(xb), yb)
        if anchors is not None:
            loss = loss + prox / 2 * sum((p - a).pow(2).sum() for p, a in zip(params, anchors, strict=True))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach())
    if carried is not None:
        carried["optimizer"] = opt.state_dict()
    return total / steps


def state_to_numpy(model: nn.Module) -> dict[str, np.ndarray]:
    """A model's state as NumPy arrays (CPU copies)."""
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def load_numpy_state(model: nn.Module, state: dict[str, np.ndarray]) -> None:
    """Load NumPy arrays into `model`, each cast to the dtype of the tensor it replaces."""
    current = model.state_dict()
    model.load_state_dict({k: torch.as_tensor(np.asarray(v)).to(current[k].dtype) for k, v in state.items()})
