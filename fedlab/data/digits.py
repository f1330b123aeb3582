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

Test split (fixed, the federation's "official" one): 300 of the 1,797 images (30 per class,
chosen with the fixed seed) form a TEST BLOCK that belongs to no domain's training rows. Each
domain's test set is the whole block rendered with that domain's shift, so a held-out target
is scored on 300 images whose digits no client trained on and the server never voted on; the
remaining 1,497 images are split into the 5 disjoint domains (~300 training rows each, which
for the target are the unlabeled pool). ``test_fraction`` does not apply to ``digits``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from fedlab.config import FederationConfig
from fedlab.data.base import RawDomain, Source

DOMAINS = ("original", "rotated", "inverted", "colour", "noisy")
# Default target: rotation is a real, moderate shift (source-only models reach ~40-50%), so the
# demo shows domain adaptation and Group Effect at work; `inverted` is near-adversarial (~0-15%).
DEFAULT_TARGET = "rotated"
SIZE = 28
_INNER = 22
_SEED = 1797  # fixed: the domains (membership and shifts) are the same in every run
TEST_PER_CLASS = 30  # the fixed test block: 300 images, scored in every domain's shift

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


def _render(name: str, d: int, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Base images of one domain with its shift applied: float32 (N, 3, 28, 28) in [0, 1]."""
    grey = _base_images(images)
    if name == "rotated":
        grey = _rotate(grey, rng)
    elif name == "inverted":
        grey = 1.0 - grey
    if name == "colour":
        x = _colour(grey, rng)
    elif name == "noisy":
        x = np.repeat(_noisy(grey, rng), 3, axis=1)
    else:
        x = np.repeat(grey, 3, axis=1)
    return np.ascontiguousarray(np.clip(x, 0.0, 1.0), dtype=np.float32)


def test_block(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of the fixed test block: TEST_PER_CLASS images of every class."""
    return np.sort(
        np.concatenate([rng.choice(np.flatnonzero(y == c), TEST_PER_CLASS, replace=False) for c in range(10)])
    )


@functools.cache
def build_digits() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """{name: (x_train, y_train, x_test, y_test)}: x float32 (N, 3, 28, 28) in [0, 1]; deterministic.

    Training rows are disjoint across domains and disjoint from the shared test block."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images)
    y = np.asarray(bunch.target, dtype=np.int64)
    rng = np.random.default_rng(_SEED)
    test_idx = test_block(y, rng)
    rest = np.setdiff1d(np.arange(len(y)), test_idx)
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for d, (name, part) in enumerate(zip(DOMAINS, _split_domains(y[rest], rng), strict=True)):
        idx = rest[part]
        x_train = _render(name, d, images[idx], np.random.default_rng([_SEED, d]))
        x_test = _render(name, d, images[test_idx], np.random.default_rng([_SEED, d, 1]))
        out[name] = (x_train, y[idx], x_test, y[test_idx])
    return out


def digits_source(cfg: FederationConfig) -> Source:
    """The `digits` federation for the registry (ignores data_dir: the data is embedded)."""
    del cfg

    def loader(name: str) -> RawDomain:
        x, y, x_test, y_test = build_digits()[name]
        return RawDomain(x=x, y=y, x_test=x_test, y_test=y_test)

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
