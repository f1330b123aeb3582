"""``digits``: the embedded default federation, built from scikit-learn's 8x8 handwritten digits.

Why: it ships with scikit-learn (1,797 real images; Alpaydin & Kaynak, UCI "Optical
Recognition of Handwritten Digits", CC BY 4.0), so the default federation needs no download
and no data folder, yet has real domain shift. The images are split into 5 DISJOINT,
class-stratified domains with a FIXED seed (the domains never depend on the run seed), and
each domain gets one deterministic shift:

- ``original``: the digit as is;
- ``rotated``:  rotated by 30-45 degrees, random sign per image;
- ``inverted``: 1 - x (white background, dark strokes);
- ``colour``:   per-image background/foreground colours from a fixed palette;
- ``noisy``:    Gaussian blur (sigma 1) plus Gaussian noise (sigma 0.2).

Images are upsampled bilinearly to 22x22 and padded to 28x28 (a margin like MNIST's, so
rotation does not clip strokes), giving float32 (N, 3, 28, 28) in [0, 1]: the same input
as digit-five, so the same CNN works on both.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from fedlab.config import FederationConfig
from fedlab.data.registry import RawDomain, Source

DOMAINS = ("original", "rotated", "inverted", "colour", "noisy")
# Default target: rotation is a real, moderate shift (source-only models reach ~40-50%), so the
# demo shows domain adaptation and Group Effect at work; `inverted` is near-adversarial (~0-15%).
DEFAULT_TARGET = "rotated"
SIZE = 28
_INNER = 22
_SEED = 1797  # fixed: the domains (membership and shifts) are the same in every run

# Fixed RGB palette for the `colour` domain; pairs below differ enough in luminance to stay legible.
_PALETTE = np.array(
    [
        [0.90, 0.10, 0.10],
        [0.10, 0.60, 0.10],
        [0.10, 0.20, 0.90],
        [0.95, 0.85, 0.10],
        [0.60, 0.10, 0.70],
        [0.10, 0.80, 0.85],
        [0.95, 0.50, 0.05],
        [0.05, 0.05, 0.05],
        [0.95, 0.95, 0.95],
    ],
    dtype=np.float32,
)


def _colour_pairs() -> np.ndarray:
    lum = _PALETTE @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    pairs = [
        (b, f) for b in range(len(_PALETTE)) for f in range(len(_PALETTE)) if abs(lum[b] - lum[f]) >= 0.3
    ]
    return np.array(pairs, dtype=np.int64)


def _split_domains(y: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Disjoint, class-stratified index sets, one per domain."""
    parts: list[list[np.ndarray]] = [[] for _ in DOMAINS]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        # Rotate the start so the remainders do not always land in the first domains.
        chunks = np.array_split(idx, len(DOMAINS))
        shift = int(c) % len(DOMAINS)
        for d in range(len(DOMAINS)):
            parts[(d + shift) % len(DOMAINS)].append(chunks[d])
    return [np.sort(np.concatenate(p)) for p in parts]


def _base_images(images: np.ndarray) -> np.ndarray:
    """(N, 8, 8) in 0..16 -> (N, 1, 28, 28) float32 in [0, 1]."""
    t = torch.from_numpy(images.astype(np.float32) / 16.0).unsqueeze(1)
    t = F.interpolate(t, size=(_INNER, _INNER), mode="bilinear", align_corners=False)
    pad = (SIZE - _INNER) // 2
    t = F.pad(t, (pad, SIZE - _INNER - pad, pad, SIZE - _INNER - pad))
    return t.clamp_(0.0, 1.0).numpy()


def _rotate(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    angles = rng.uniform(30.0, 45.0, size=len(grey)) * rng.choice([-1.0, 1.0], size=len(grey))
    rad = torch.from_numpy(np.deg2rad(angles).astype(np.float32))
    cos, sin = torch.cos(rad), torch.sin(rad)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    t = torch.from_numpy(grey)
    grid = F.affine_grid(theta, list(t.shape), align_corners=False)
    return F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False).numpy()


def _colour(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    pairs = _colour_pairs()
    chosen = pairs[rng.integers(len(pairs), size=len(grey))]
    bg = _PALETTE[chosen[:, 0]][:, :, None, None]
    fg = _PALETTE[chosen[:, 1]][:, :, None, None]
    return bg * (1.0 - grey) + fg * grey


def _noisy(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    blurred = ndimage.gaussian_filter(grey, sigma=(0, 0, 1.0, 1.0))
    return blurred + rng.normal(0.0, 0.2, size=grey.shape).astype(np.float32)


@functools.cache
def build_digits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The five shifted domains as {name: (x float32 (N,3,28,28) in [0,1], y int64)}; deterministic."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images)
    y = np.asarray(bunch.target, dtype=np.int64)
    rng = np.random.default_rng(_SEED)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for d, (name, idx) in enumerate(zip(DOMAINS, _split_domains(y, rng), strict=True)):
        grey = _base_images(images[idx])
        shift_rng = np.random.default_rng([_SEED, d])
        if name == "rotated":
            grey = _rotate(grey, shift_rng)
        elif name == "inverted":
            grey = 1.0 - grey
        if name == "colour":
            x = _colour(grey, shift_rng)
        elif name == "noisy":
            x = np.repeat(_noisy(grey, shift_rng), 3, axis=1)
        else:
            x = np.repeat(grey, 3, axis=1)
        out[name] = (np.ascontiguousarray(np.clip(x, 0.0, 1.0), dtype=np.float32), y[idx])
    return out


def digits_source(cfg: FederationConfig) -> Source:
    """The `digits` federation for the registry (ignores data_dir: the data is embedded)."""
    del cfg

    def loader(name: str) -> RawDomain:
        x, y = build_digits()[name]
        return RawDomain(x=x, y=y)

    return Source(
        name="digits",
        domains={name: functools.partial(loader, name) for name in DOMAINS},
        num_classes=10,
        input_shape=(3, SIZE, SIZE),
        kind="image",
        class_names=[str(i) for i in range(10)],
        default_target=DEFAULT_TARGET,
    )


__all__ = ["DEFAULT_TARGET", "DOMAINS", "build_digits", "digits_source"]
