"""How many intra-op threads torch uses for a run: one rule for simulation and deployment.

Why one owner: a float sum split over 2 threads is not the sum over 1 (the last bits differ),
so the same config and seed give the same model simulated and deployed only if the processes
that train and evaluate use the same thread count. Vector models (tabular, features) are small
enough that one thread is also the fastest (no fork-join per tiny matmul); image models keep
torch's default. `torch_threads` in the config overrides both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def threads_for(torch_threads: int, kind: str) -> int:
    """Intra-op threads for a federation of `kind` ("image" | "vector"); 0 = torch's default."""
    return torch_threads or (1 if kind == "vector" else 0)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Set torch's intra-op threads for the block (0 = leave as is), then restore them."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def use_threads(n: int) -> None:
    """Set torch's intra-op threads for the rest of this process (0 = leave as is): a deployed
    ServerApp or ClientApp process serves one run."""
    if n:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
