"""Models with an explicit feature extractor and classifier head.

FedKA and its baselines align *features* across domains, so every model exposes
``features(x)`` (the extractor's embedding) and ``head(z)`` (the classifier).
The CNN follows the FedKA reference for digits: conv64-BN-pool-ReLU,
conv50-BN-dropout-pool-ReLU, fc100-BN-ReLU, fc10.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

NormKind = str  # "batch" (default) or "group" (Opacus-compatible, used under DP)


def _groups(channels: int, at_most: int) -> int:
    """Largest divisor of `channels` not above `at_most` (GroupNorm needs an exact split)."""
    for g in range(max(1, min(at_most, channels)), 0, -1):
        if channels % g == 0:
            return g
    return 1


def _norm2d(kind: NormKind, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(_groups(channels, min(32, channels // 2)), channels)
    return nn.BatchNorm2d(channels)


def _norm1d(kind: NormKind, features: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(_groups(features, min(20, features // 5)), features)
    return nn.BatchNorm1d(features)


class DomainModel(nn.Module):
    """Base: `extractor` maps inputs to an embedding, `classifier` maps it to logits."""

    extractor: nn.Module
    classifier: nn.Module
    embedding_dim: int

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding: what MK-MMD aligns and what the server sends as target embeddings."""
        return self.extractor(x)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """Class logits from an embedding (the part head-only fine-tuning may touch)."""
        return self.classifier(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch: head(features(x))."""
        return self.head(self.features(x))


class DigitCNN(DomainModel):
    """FedKA reference CNN for 3×28×28 digits (works for any H, W ≥ 12)."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, norm: NormKind = "batch") -> None:
        super().__init__()
        c, h, w = input_shape
        conv = nn.Sequential(
            nn.Conv2d(c, 64, kernel_size=5),
            _norm2d(norm, 64),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(64, 50, kernel_size=5),
            _norm2d(norm, 50),
            nn.Dropout2d(0.5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = conv(torch.zeros(2, c, h, w)).shape[1]
        self.embedding_dim = 100
        self.extractor = nn.Sequential(conv, nn.Linear(flat, 100), _norm1d(norm, 100), nn.ReLU())
        self.classifier = nn.Linear(100, num_classes)


class FeatureMLP(DomainModel):
    """MLP for feature vectors (SURF/DeCAF, bag-of-words) and encoded tables."""

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        hidden: int = 256,
        embedding: int = 64,
        norm: NormKind = "batch",
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding
        self.extractor = nn.Sequential(
            nn.Linear(input_dim, hidden),
            _norm1d(norm, hidden),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(hidden, embedding),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(embedding, num_classes)


def build_model(
    kind: str, input_shape: Sequence[int], num_classes: int, norm: NormKind = "batch"
) -> DomainModel:
    """The model a federation uses: CNN for images, MLP for vectors."""
    if kind == "image":
        return DigitCNN(input_shape, num_classes, norm=norm)
    return FeatureMLP(int(input_shape[0]), num_classes, norm=norm)


class DomainDiscriminator(nn.Module):
    """f-DANN's client-side domain classifier (source vs target) on embeddings."""

    def __init__(self, embedding_dim: int, hidden: int = 100) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embedding_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Source-vs-target logit of each embedding (f-DANN's client-side discriminator)."""
        return self.net(z).squeeze(-1)


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:  # type: ignore[override]
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity forward, gradient multiplied by −coeff backward (Ganin & Lempitsky 2015)."""
    return _GradReverse.apply(x, coeff)
