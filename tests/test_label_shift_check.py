"""scripts/label_shift_check.py's input-space test: r near 0 when a class re-weighting explains the
target's mean shift (label shift), near 1 when it does not (covariate shift)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _check():
    path = ROOT / "scripts" / "label_shift_check.py"
    spec = importlib.util.spec_from_file_location("label_shift_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _draw(rng: np.random.Generator, n: int, rate: float, offset: object = 0.0) -> tuple:
    y = (rng.random(n) < rate).astype(int)
    x = rng.normal(size=(n, 5)) + 2.0 * y[:, None] + offset
    return x, y


def test_the_input_space_test_tells_label_shift_from_covariate_shift() -> None:
    check = _check()
    rng = np.random.default_rng(0)
    xs, ys = _draw(rng, 4000, 0.2)
    xt, _ = _draw(rng, 4000, 0.6)  # the same class-conditionals, another class mix
    d0, d1, tv = check.mean_shift_explained(xs, ys, xt, 2)
    assert d0 > 0 and d1 / d0 < 0.05 and abs(tv - 0.4) < 0.05
    xt, _ = _draw(rng, 4000, 0.2, offset=np.array([1.0, -1.0, 1.0, -1.0, 0.0]))  # same mix, moved inputs
    d0, d1, tv = check.mean_shift_explained(xs, ys, xt, 2)
    assert d0 > 0 and d1 / d0 > 0.9 and tv < 0.05
