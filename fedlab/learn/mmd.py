"""Multi-kernel maximum mean discrepancy (MK-MMD), as in DAN and the FedKA reference.

Five Gaussian kernels whose bandwidths are the mean pairwise squared distance of the
pooled sample times multiplier^i for i in [-2, 2] (multiplier 2). The biased
(V-statistic) estimate is returned: exactly 0 for identical samples, > 0 for distinct
distributions.
"""

from __future__ import annotations

import math

import numpy as np
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
    source: torch.Tensor,
    target: torch.Tensor,
    kernel_mul: float = 2.0,
    kernel_num: int = 5,
    target_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Biased MK-MMD² between two samples of embeddings (sizes may differ).

    `target_weights` (one per target row, ≥ 0) replaces the target sample's uniform weights by
    these, normalised to sum 1 (uniform again when they sum to 0): the discrepancy to a reweighted
    target distribution, as class-weighted MMD needs (`class_weights`). The bandwidths stay those of
    the unweighted pooled sample."""
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(
            f"mk_mmd expects 2-D samples of equal width, got {tuple(source.shape)} and {tuple(target.shape)}"
        )
    ns = source.shape[0]
    k = gaussian_kernel_matrix(source, target, kernel_mul, kernel_num)
    xx = k[:ns, :ns].mean()
    if target_weights is None:
        yy = k[ns:, ns:].mean()
        xy = k[:ns, ns:].mean()
        return xx + yy - 2 * xy
    w = target_weights.to(k.dtype)
    total = w.sum()
    w = w / total if float(total) > 0 else torch.full_like(w, 1.0 / len(w))
    yy = w @ k[ns:, ns:] @ w
    xy = (k[:ns, ns:] @ w).mean()
    return xx + yy - 2 * xy


def class_weights(own_labels: np.ndarray, target_predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Per target row, p_own(ŷ) / q(ŷ): the weight that gives the target sample the class mix of
    `own_labels` (a client's training labels) as far as its predicted classes tell.

    Why: MMD on the marginals pulls a domain towards another's label mix when their label rates
    differ (label shift), and that costs target accuracy; weighting by class removes that pull
    (class-weighted MMD, Yan et al. 2017). A class the client does not hold gets weight 0."""
    own = np.bincount(np.asarray(own_labels, dtype=np.int64), minlength=num_classes)[:num_classes]
    pred = np.asarray(target_predicted, dtype=np.int64)
    seen = np.bincount(pred, minlength=num_classes)[:num_classes]
    p = own / max(own.sum(), 1)
    q = seen / max(seen.sum(), 1)
    ratio = np.divide(p, q, out=np.zeros(num_classes), where=q > 0)
    return ratio[pred].astype(np.float32)


def ramp(progress: float, gamma: float = 5.0) -> float:
    """DANN/FedKA ramp α = 2/(1+exp(−γp)) − 1 over training progress p ∈ [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0
