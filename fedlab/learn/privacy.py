"""Differential privacy for fedlab runs: client DP-SGD (Opacus) and central DP (Flower).

Client mode (``dp.mode = "client"``, the default). Every client trains with DP-SGD through
Opacus's `PrivacyEngine`: Poisson sampling of its rows (Opacus's `DPDataLoader`, sampling rate
q = 1 / ceil(n / batch_size), Opacus's own convention), per-sample gradient clipping to
``max_grad_norm`` and Gaussian noise of std σ·C on the summed clipped gradients. σ is either
given (``noise_multiplier``) or calibrated up front so that the PLANNED ``rounds × local_steps``
steps spend exactly ``target_epsilon`` at δ (default 1/n) — what `make_private_with_epsilon`
does, but over steps instead of whole epochs (`noise_for_target`). The RDP accountant's history
is kept in the client's ``context.state`` between rounds, so ε accumulates over the run; each
round the client reports the ε spent so far. A client whose next round would take it past its
budget (the target ε, or ``epsilon_budget`` with a fixed σ) does not train: it returns the
weights it received, flagged ``budget-exhausted``, and the server leaves it out of the average.

What consumes a client's privacy budget (FedKA and its baselines):

* consumed: only the client's DP-SGD steps on its labelled source rows. That includes the
  MK-MMD alignment term: it is computed from the client's private embeddings, so it sits inside
  the same clipped, noised per-sample gradients as the cross-entropy (the target embeddings it
  is compared with are the server's, i.e. public to the client). FedProx's proximal term depends
  only on weights, so it is added after privatization (`ProxSGD`) and costs nothing;
* not consumed: everything the server does with data it owns or with already-privatized models —
  computing target embeddings, each returned client model's votes on the target pool, FedKA's
  fine-tuning on the voted pseudo-labels, target-domain accuracy and Group Effect. These are
  post-processing of DP outputs (the client models) plus the server's own target data;
* outside the guarantee (reported metrics, not model updates): the clients' evaluation
  replies (own-split accuracy, per-group fairness counts) and the training-loss metrics.

Caveat, stated rather than hidden: MK-MMD is a batch statistic (the source–source kernel term
couples the samples of a batch), so a sample's clipped gradient also depends on its batch-mates;
the accountant's guarantee is exact for per-sample-separable losses (fedavg, fedprox, the
cross-entropy part), and for the MMD term it rests on the per-sample clipping Opacus applies.
f-DANN is rejected under DP-SGD: its client-side discriminator is trained on a batch that mixes
target rows into the per-sample gradients. Models use GroupNorm under DP (`fedlab.federation.setup.
model_norm`) and are checked with `opacus.validators.ModuleValidator.validate`.

Central mode (``dp.mode = "central"``): Flower's `DifferentialPrivacyServerSideFixedClipping`
clips each client's update to ``max_grad_norm`` and adds N(0, (σC/m)²) to the average of the m
clients: user-level DP. Every client takes part in every round, so there is no sampling
amplification: ε after r rounds is the RDP of r Gaussian mechanisms (`central_epsilon`), the
same composition Flower's no-amplification PrivacyAccountant performs. FedKA's voting is
rejected in central mode: the votes come from the individual, un-noised client models.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from fedlab.config import DPConfig, TrainingConfig
from fedlab.core.errors import ConfigError

ACCOUNTANT_STATE = "dp-accountant"


def sample_rate(n: int, batch_size: int) -> float:
    """Poisson sampling rate of Opacus's DPDataLoader for n rows and this batch size."""
    if n < 1:
        raise ConfigError("dp: a client without training rows cannot run DP-SGD")
    return 1.0 / math.ceil(n / min(batch_size, n))


def default_delta(n: int) -> float:
    """δ = 1/n (n = the client's rows or, in central mode, the number of clients); at least 1/2."""
    return 1.0 / max(n, 2)


def epsilon(history: Iterable[tuple[float, float, int]], delta: float) -> float:
    """ε of a sequence of (noise multiplier, sampling rate, steps) under Opacus's RDP accountant."""
    return _epsilon(tuple((float(s), float(q), int(n)) for s, q, n in history), float(delta))


@functools.lru_cache(maxsize=4096)
def _epsilon(history: tuple[tuple[float, float, int], ...], delta: float) -> float:
    # Cached: fractional RDP orders cost ~0.1-1 s per call, and clients repeat the same histories.
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    acc.history = list(history)
    return float(acc.get_epsilon(delta)) if acc.history else 0.0


@functools.lru_cache(maxsize=1024)
def noise_for_target(target_epsilon: float, delta: float, rate: float, steps: int) -> float:
    """σ so that `steps` Poisson-sampled steps at `rate` spend at most `target_epsilon` (RDP).

    Opacus's `make_private_with_epsilon` calibrates over whole epochs; fedlab plans in steps
    (rounds × local_steps), so σ is found here by bisection, on the RDP accountant's integer
    orders only (20× faster than the fractional ones). ε is a minimum over orders, so the ε
    the full accountant then reports for this σ is at most the target (checked in the tests)."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

    orders = [float(a) for a in RDPAccountant.DEFAULT_ALPHAS if float(a).is_integer()]

    def eps_of(sigma: float) -> float:
        rdp = compute_rdp(q=rate, noise_multiplier=sigma, steps=steps, orders=orders)
        return float(get_privacy_spent(orders=orders, rdp=rdp, delta=delta)[0])

    lo, hi = 0.0, 1.0
    while eps_of(hi) > target_epsilon:
        lo, hi = hi, 2 * hi
        if hi > 1e4:
            raise ConfigError(
                f"dp: epsilon={target_epsilon} at delta={delta:g} over {steps} steps needs noise > 1e4; "
                "raise epsilon or lower rounds/local_steps"
            )
    while hi - lo > 1e-4 * hi:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if eps_of(mid) <= target_epsilon else (mid, hi)
    return hi


def central_epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """User-level ε of `rounds` Gaussian releases with all clients in every round (no amplification)."""
    return epsilon([(noise_multiplier, 1.0, rounds)], delta) if rounds > 0 else 0.0


def validate_model(model: nn.Module) -> None:
    """Opacus-compatibility of the model, as a one-line ConfigError."""
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        raise ConfigError(f"dp: model is not DP-SGD compatible: {str(errors[0]).split('.')[0]}")


@dataclass(frozen=True)
class ClientPlan:
    """A client's DP-SGD parameters for the whole run (the same every round)."""

    noise_multiplier: float
    sample_rate: float
    steps_per_round: int
    planned_steps: int
    delta: float
    max_grad_norm: float
    budget: float | None  # ε a client may spend (None: unlimited)


def plan_client(dp: DPConfig, training: TrainingConfig, n_train: int) -> ClientPlan:
    """A client's σ, sampling rate, δ and budget for the run, from the DP and training settings."""
    t = training
    rate = sample_rate(n_train, t.batch_size)
    delta = dp.delta if dp.delta is not None else default_delta(n_train)
    planned = t.rounds * t.local_steps
    if dp.target_epsilon is not None:
        sigma, budget = noise_for_target(dp.target_epsilon, delta, rate, planned), dp.target_epsilon
    else:
        sigma, budget = float(dp.noise_multiplier), dp.epsilon_budget  # type: ignore[arg-type]
    return ClientPlan(sigma, rate, t.local_steps, planned, delta, dp.max_grad_norm, budget)


def load_history(state: Any) -> list[tuple[float, float, int]]:
    """The RDP accountant history a client kept in its Flower ``context.state``."""
    rec = state.get(ACCOUNTANT_STATE) if hasattr(state, "get") else None
    if rec is None:
        return []
    return [
        (float(s), float(q), int(n))
        for s, q, n in zip(rec["noise"], rec["rate"], rec["steps"], strict=True)  # type: ignore[arg-type]
    ]


def save_history(state: Any, history: list[tuple[float, float, int]]) -> None:
    """Keep the RDP accountant's history in the client's Flower `context.state`, so ε accumulates across
    rounds."""
    from flwr.app import ConfigRecord

    state[ACCOUNTANT_STATE] = ConfigRecord(
        {
            "noise": [float(s) for s, _, _ in history],
            "rate": [float(q) for _, q, _ in history],
            "steps": [int(n) for _, _, n in history],
        }
    )


class ProxSGD(torch.optim.SGD):
    """SGD plus FedProx's μ(w − w_global), added at step time, i.e. after DP privatization.

    The proximal gradient depends on weights only (no data), so adding it to the already
    clipped-and-noised gradient costs no privacy; inside the loss Opacus would drop it."""

    def __init__(self, params: list[nn.Parameter], anchors: list[torch.Tensor], mu: float, **kw: Any) -> None:
        super().__init__(params, **kw)
        self._anchors = [(p, a) for p, a in zip(params, anchors, strict=True)]
        self._mu = mu

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        """SGD step after adding μ(w − w_global) to each gradient."""
        for p, a in self._anchors:
            if p.grad is not None:
                p.grad.add_(p - a.to(p.device), alpha=self._mu)
        return super().step(closure)


@dataclass
class ClientDPRound:
    """One client's DP-SGD round: Opacus optimizer + Poisson batches for `train_local`.

    Pass ``optimizer_factory=r.optimizer_factory, batch_sampler=r`` to `train_local`; the
    factory wraps the model with Opacus (train_local calls it before sampling any batch)."""

    plan: ClientPlan
    model: nn.Module
    history: list[tuple[float, float, int]]
    n_train: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    prox_mu: float = 0.0
    anchors: list[torch.Tensor] | None = None
    engine: Any = field(default=None, init=False)
    _wrapped: Any = field(default=None, init=False)
    _loader: Any = field(default=None, init=False)
    _it: Any = field(default=None, init=False)

    @property
    def spent(self) -> float:
        """ε spent so far (before this round's steps: the history as loaded)."""
        return epsilon(self.history, self.plan.delta)

    def would_exceed_budget(self) -> bool:
        """Whether this round's planned steps would take the client past its ε budget."""
        if self.plan.budget is None:
            return False
        step = (self.plan.noise_multiplier, self.plan.sample_rate, self.plan.steps_per_round)
        return epsilon([*self.history, step], self.plan.delta) > self.plan.budget * (1 + 1e-9)

    def optimizer_factory(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        """Opacus's private optimizer for `params` (the model wrapped with the PrivacyEngine); what
        `train_local` calls first."""
        from opacus import PrivacyEngine
        from torch.utils.data import DataLoader, TensorDataset

        validate_model(self.model)
        kw = {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}
        if self.prox_mu > 0 and self.anchors is not None:
            base: torch.optim.Optimizer = ProxSGD(params, self.anchors, self.prox_mu, **kw)
        else:
            base = torch.optim.SGD(params, **kw)
        self.engine = PrivacyEngine(accountant="rdp")
        self.engine.accountant.history = list(self.history)
        rows = DataLoader(
            TensorDataset(torch.arange(self.n_train)), batch_size=min(self.batch_size, self.n_train)
        )
        self._wrapped, optimizer, self._loader = self.engine.make_private(
            module=self.model,
            optimizer=base,
            data_loader=rows,
            noise_multiplier=self.plan.noise_multiplier,
            max_grad_norm=self.plan.max_grad_norm,
            poisson_sampling=True,
        )
        return optimizer

    def next(self) -> np.ndarray:
        """Indices of the next Poisson-sampled batch (may be empty: Opacus still adds noise)."""
        if self._loader is None:
            raise RuntimeError("ClientDPRound.next() before optimizer_factory()")
        while True:
            if self._it is None:
                self._it = iter(self._loader)
            try:
                batch = next(self._it)
            except StopIteration:
                self._it = None
                continue
            idx = batch[0] if isinstance(batch, list | tuple) else batch
            return np.asarray(idx, dtype=np.int64).reshape(-1)

    def finish(self) -> list[tuple[float, float, int]]:
        """The accountant history after training (Opacus recorded one entry per optimizer step)."""
        if self.engine is not None:
            self.history = [(float(s), float(q), int(n)) for s, q, n in self.engine.accountant.history]
            if self._wrapped is not None:
                self._wrapped._close()  # hooks and per-sample grads off the client's model
        return self.history


def client_dp_round(
    dp: DPConfig,
    training: TrainingConfig,
    model: nn.Module,
    n_train: int,
    state: Any,
    anchors: list[torch.Tensor] | None,
) -> ClientDPRound:
    """This round's DP-SGD for one client; FedProx's term (ProxSGD) when `anchors` are given."""
    t = training
    plan = plan_client(dp, t, n_train)
    return ClientDPRound(
        plan=plan,
        model=model,
        history=load_history(state),
        n_train=n_train,
        batch_size=t.batch_size,
        lr=t.lr,
        momentum=t.momentum,
        weight_decay=t.weight_decay,
        prox_mu=t.proximal_mu if anchors is not None else 0.0,
        anchors=anchors,
    )


def central_dp_strategy(inner: Any, dp: DPConfig, num_clients: int) -> Any:
    """Flower's server-side fixed-clipping DP wrapped around a fedlab strategy (central mode)."""
    from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping

    delta = dp.delta if dp.delta is not None else default_delta(num_clients)
    sigma = float(dp.noise_multiplier)  # type: ignore[arg-type]

    class CentralDP(DifferentialPrivacyServerSideFixedClipping):
        """Records the ε spent after each noised release in the inner strategy's round record."""

        releases = 0

        def aggregate_train(self, server_round: int, replies: Iterable[Any]) -> Any:
            arrays, metrics = super().aggregate_train(server_round, replies)
            if arrays is not None:
                self.releases += 1
            inner._round["central_epsilon"] = central_epsilon(sigma, self.releases, delta)
            inner._round["central_delta"] = delta
            return arrays, metrics

    return CentralDP(inner, sigma, dp.max_grad_norm, num_clients)
