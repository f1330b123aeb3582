"""One place to seed every RNG fedlab uses, so the same seed gives the same numbers on CPU."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if installed) PyTorch, and make torch deterministic on CPU."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # audits can run without torch
        return
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def seed_torch(seed: int) -> None:
    """`torch.manual_seed` for the generators fedlab uses (CPU, and CUDA when available).

    Same numbers as `torch.manual_seed` on CPU and CUDA, without its lazy seeding of other
    accelerators (XPU), which records a Python stack trace per call: ~10 ms, paid by every
    client update (half the client-side overhead of a small-model round)."""
    import torch

    torch.random.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def client_seed(seed: int, server_round: int, client_id: int) -> int:
    """The seed of one client's update in one round: the ONE formula every trainer uses.

    A client's randomness (batch order, dropout) depends on the run seed, the round and the
    client's identity — never on the order in which clients happen to run — so every engine,
    the deployment and the benchmarks' plain loops train the same client the same way."""
    return int(np.random.SeedSequence([seed, server_round, client_id]).generate_state(1)[0])
