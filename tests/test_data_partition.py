"""Client partitioning: IID and Dirichlet label skew (sizes, disjointness, determinism, skew)."""

from __future__ import annotations

import numpy as np
import pytest

from fedlab.config import FederationConfig
from fedlab.core.errors import DataError
from fedlab.data import load_federation, make_clients
from fedlab.data.partition import (
    dirichlet_label_split,
    dirichlet_proportions,
    iid_split,
    split_by_proportions,
)


def _labels(n: int = 2000, classes: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(classes, size=n)


def _check_partition(parts: list[np.ndarray], n: int) -> None:
    flat = np.concatenate(parts)
    assert len(flat) == n and len(np.unique(flat)) == n  # disjoint and covering
    assert all(np.all(np.diff(p) > 0) for p in parts if len(p) > 1)  # sorted


def test_iid_split_sizes_disjoint_deterministic() -> None:
    parts = iid_split(103, 4, np.random.default_rng(1))
    _check_partition(parts, 103)
    assert sorted(len(p) for p in parts) == [25, 26, 26, 26]
    again = iid_split(103, 4, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = iid_split(103, 4, np.random.default_rng(2))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=True))


def test_dirichlet_split_min_size_disjoint_deterministic() -> None:
    y = _labels()
    parts = dirichlet_label_split(y, 5, 0.3, np.random.default_rng(0), min_size=50)
    _check_partition(parts, len(y))
    assert min(len(p) for p in parts) >= 50
    again = dirichlet_label_split(y, 5, 0.3, np.random.default_rng(0), min_size=50)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def _skew(y: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean total-variation distance between each part's label distribution and the global one."""
    glob = np.bincount(y, minlength=10) / len(y)
    return float(
        np.mean([0.5 * np.abs(np.bincount(y[p], minlength=10) / len(p) - glob).sum() for p in parts])
    )


def test_dirichlet_is_label_skewed_and_alpha_controls_it() -> None:
    y = _labels(5000)
    iid = _skew(y, iid_split(len(y), 5, np.random.default_rng(0)))
    low = _skew(y, dirichlet_label_split(y, 5, 0.1, np.random.default_rng(0), min_size=10))
    high = _skew(y, dirichlet_label_split(y, 5, 100.0, np.random.default_rng(0), min_size=10))
    assert iid < 0.05 and high < 0.1
    assert low > 0.4 > high


def test_same_proportions_split_test_rows_alike() -> None:
    y_train, y_test = _labels(3000, seed=1), _labels(800, seed=2)
    props = dirichlet_proportions(y_train, 4, 0.2, np.random.default_rng(0), min_size=10)
    assert props.shape == (10, 4) and np.allclose(props.sum(1), 1)
    tr = split_by_proportions(y_train, props, np.random.default_rng(0))
    te = split_by_proportions(y_test, props, np.random.default_rng(0))
    _check_partition(te, len(y_test))
    for a, b in zip(tr, te, strict=True):
        da = np.bincount(y_train[a], minlength=10) / len(a)
        db = np.bincount(y_test[b], minlength=10) / max(len(b), 1)
        assert 0.5 * np.abs(da - db).sum() < 0.2


def test_impossible_min_size_is_a_data_error() -> None:
    with pytest.raises(DataError, match="cannot split 30 rows into 4 clients"):
        dirichlet_label_split(_labels(30), 4, 0.5, np.random.default_rng(0), min_size=10)
    with pytest.raises(DataError, match="after 1000 draws"):
        # one class only, tiny alpha: nearly all mass on one client every time
        dirichlet_label_split(np.zeros(100, np.int64), 3, 0.001, np.random.default_rng(0), min_size=30)


@pytest.mark.parametrize("split", ["iid", "dirichlet"])
def test_make_clients_partitions_each_source_domain(split: str) -> None:
    cfg = FederationConfig(clients_per_domain=3, split=split, dirichlet_alpha=0.3)
    fed = load_federation(cfg, seed=0)
    clients = make_clients(fed, "rotated", cfg, seed=0)
    assert len(clients) == 12 and "rotated" not in {c.domain for c in clients}
    for name in ("original", "inverted", "colour", "noisy"):
        mine = [c for c in clients if c.domain == name]
        ys = np.sort(np.concatenate([c.y_train for c in mine]))
        np.testing.assert_array_equal(ys, np.sort(fed.domains[name].y_train))
        assert sum(len(c.y_test) for c in mine) == len(fed.domains[name].y_test)
        assert all(len(c.y_test) > 0 and len(c.y_train) > 0 for c in mine)
        assert all(c.x_train.shape[1:] == (3, 28, 28) for c in mine)
    again = make_clients(fed, "rotated", cfg, seed=0)
    assert all(np.array_equal(a.y_train, b.y_train) for a, b in zip(clients, again, strict=True))
    other = make_clients(fed, "rotated", cfg, seed=1)
    assert not all(np.array_equal(a.y_train, b.y_train) for a, b in zip(clients, other, strict=True))
