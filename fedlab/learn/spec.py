"""The local-training spec of a round, built from the training settings in ONE place.

Why: a client's round (`clients/app.py`), FedKA's server fine-tuning and the benchmarks' plain
loops must train exactly alike for the same settings; four hand-built `LocalTrainSpec`s had
already drifted (one forgot the epoch cap). Everything a spec needs is in `TrainingConfig`, the
client mode (from the strategy) and the round.
"""

from __future__ import annotations

from fedlab.config import TrainingConfig
from fedlab.learn.training import LocalTrainSpec, Mode, capped_steps


def local_spec(
    training: TrainingConfig, mode: Mode, n_rows: int, server_round: int, proximal_mu: float | None = None
) -> LocalTrainSpec:
    """What one client does in `server_round`: `training.local_steps` steps (capped at
    `max_epochs_per_round` passes over its `n_rows`), the optimizer settings, and the training
    progress the MMD ramp reads. `proximal_mu` overrides the config's (Flower's FedProx sends it)."""
    t = training
    return LocalTrainSpec(
        mode=mode,
        steps=capped_steps(t.local_steps, n_rows, t.batch_size, t.max_epochs_per_round),
        batch_size=t.batch_size,
        lr=t.lr,
        momentum=t.momentum,
        weight_decay=t.weight_decay,
        proximal_mu=t.proximal_mu if proximal_mu is None else proximal_mu,
        mmd_weight=t.mmd_weight,
        optimizer=t.optimizer,
        progress_start=(server_round - 1) / t.rounds,
        progress_end=server_round / t.rounds,
    )


def finetune_spec(training: TrainingConfig) -> LocalTrainSpec:
    """The optimizer settings of FedKA's server fine-tuning (its own learning rate when set)."""
    t = training
    return LocalTrainSpec(
        batch_size=t.batch_size,
        lr=t.finetune_lr if t.finetune_lr is not None else t.lr,
        momentum=t.momentum,
        weight_decay=t.weight_decay,
        optimizer=t.optimizer,
    )
