"""Multi-kernel maximum mean discrepancy (MK-MMD), as in DAN and the FedKA reference.

Five Gaussian kernels whose bandwidths are the mean pairwise squared distance of the
pooled sample times multiplier^i for i in [-2, 2] (multiplier 2). The biased
(V-statistic) estimate is returned: exactly 0 for identical samples, > 0 for distinct
distributions.
"""

from __future__ import annotations

import math

import torch


def gaussian_kernel_matrix(
    x: torch.Tensor, y: torch.Tensor, kernel_mul: float = 2.0, kernel_num: int = 5
) -> torch.Tensor:
    """Sum of `kernel_num` Gaussian kernels over the pooled sample [x; y]."""
    total = torch.cat([x, y], dim=0)
    sq_dist = torch.cdist(total, total, p=2.0).pow(2)
    n = total.shape[0]
    bandwidth = sq_dist.detach().sum() / max(n * n - n, 1)
    bandwidth = torch.clamp(bandwidth, min=1e-8) / (kernel_mul ** (kernel_num // 2))
    bandwidths = [bandwidth * kernel_mul**i for i in range(kernel_num)]
    return sum(torch.exp(-sq_dist / bw) for bw in bandwidths)  # type: ignore[return-value]


def mk_mmd(
    source: torch.Tensor, target: torch.Tensor, kernel_mul: float = 2.0, kernel_num: int = 5
) -> torch.Tensor:
    """Biased MK-MMD² between two samples of embeddings (sizes may differ)."""
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(
            f"mk_mmd expects 2-D samples of equal width, got {tuple(source.shape)} and {tuple(target.shape)}"
        )
    ns = source.shape[0]
    k = gaussian_kernel_matrix(source, target, kernel_mul, kernel_num)
    xx = k[:ns, :ns].mean()
    yy = k[ns:, ns:].mean()
    xy = k[:ns, ns:].mean()
    return xx + yy - 2 * xy


def ramp(progress: float, gamma: float = 5.0) -> float:
    """DANN/FedKA ramp α = 2/(1+exp(−γp)) − 1 over training progress p ∈ [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0
