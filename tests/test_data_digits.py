"""The embedded `digits` federation: 5 disjoint, deterministic, visibly shifted domains."""

from __future__ import annotations

import numpy as np
import pytest

from fedlab.config import FederationConfig
from fedlab.core.errors import DataError
from fedlab.data import FederationData, clear_cache, load_federation, make_clients
from fedlab.data.digits import DOMAINS, build_digits


@pytest.fixture(scope="module")
def fed() -> FederationData:
    return load_federation(FederationConfig(name="digits"), seed=0)


def test_five_domains_with_image_shapes(fed: FederationData) -> None:
    assert fed.domain_names == list(DOMAINS)
    assert fed.kind == "image" and fed.input_shape == (3, 28, 28) and fed.num_classes == 10
    assert fed.default_target == "rotated"
    total = 0
    for dom in fed.domains.values():
        for x, y in ((dom.x_train, dom.y_train), (dom.x_test, dom.y_test)):
            assert x.dtype == np.float32 and x.shape[1:] == (3, 28, 28)
            assert y.dtype == np.int64 and set(np.unique(y)) <= set(range(10))
            assert x.min() >= 0.0 and x.max() <= 1.0
        assert set(np.unique(dom.y_train)) == set(range(10))
        assert len(dom.y_test) == 300 and np.bincount(dom.y_test).tolist() == [30] * 10
        total += len(dom.y_train)
    assert total == 1797 - 300  # training rows of all domains + the shared test block


def test_domains_are_disjoint() -> None:
    from sklearn.datasets import load_digits

    # Recover each domain's source images through the `original`-style base transform is lossy for
    # shifted domains, so check disjointness on the index split itself.
    from fedlab.data.digits import _SEED, _split_domains, test_block

    y = load_digits().target
    rng = np.random.default_rng(_SEED)
    test = test_block(y, rng)
    rest = np.setdiff1d(np.arange(len(y)), test)
    parts = [rest[p] for p in _split_domains(y[rest], rng)]
    flat = np.concatenate(parts)
    assert len(flat) == len(np.unique(flat)) == len(y) - 300
    assert not set(flat) & set(test)  # no domain trains (or pools) on a test-block digit
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 10


def test_target_test_set_is_fixed_across_run_seeds_and_at_least_300() -> None:
    clear_cache()
    a = load_federation(FederationConfig(max_per_domain=100), seed=0).domains["rotated"]
    clear_cache()
    b = load_federation(FederationConfig(max_per_domain=100), seed=7).domains["rotated"]
    assert len(a.y_test) >= 300 and len(a.y_train) == 100
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.x_train, b.x_train)


def test_deterministic_across_calls_and_cache() -> None:
    a = {k: tuple(v.copy() for v in arrays) for k, arrays in build_digits().items()}
    build_digits.cache_clear()
    b = build_digits()
    for k in DOMAINS:
        for i in range(4):
            np.testing.assert_array_equal(a[k][i], b[k][i])
    clear_cache()
    f1 = load_federation(FederationConfig(), seed=3)
    clear_cache()
    f2 = load_federation(FederationConfig(), seed=3)
    np.testing.assert_array_equal(f1.domains["rotated"].x_train, f2.domains["rotated"].x_train)
    assert load_federation(FederationConfig(), seed=3) is f2  # per-process cache
    # the subsample follows split_seed, never the run seed
    f4 = load_federation(FederationConfig(max_per_domain=100, split_seed=4), seed=3)
    f5 = load_federation(FederationConfig(max_per_domain=100), seed=3)
    assert not np.array_equal(f4.domains["rotated"].x_train, f5.domains["rotated"].x_train)


def test_shifts_differ() -> None:
    d = build_digits()
    means = {k: float(v[0].mean()) for k, v in d.items()}
    assert means["inverted"] > 0.6 > means["original"]
    colour = d["colour"][0]
    assert np.abs(colour[:, 0] - colour[:, 1]).mean() > 0.05  # really coloured, not grey
    for k in ("original", "rotated", "inverted", "noisy"):
        x = d[k][0]
        np.testing.assert_array_equal(x[:, 0], x[:, 1])
    # noise: neighbouring pixels far less correlated than in clean images
    rough = {k: float(np.abs(np.diff(v[0], axis=-1)).mean()) for k, v in d.items()}
    assert rough["noisy"] > 1.5 * rough["original"]
    # rotation moves mass off the vertical axis: the per-class mean images differ a lot
    o, r = d["original"], d["rotated"]
    diff = np.mean([np.abs(o[0][o[1] == c].mean(0) - r[0][r[1] == c].mean(0)).mean() for c in range(10)])
    assert diff > 0.05


def test_domain_subset_and_unknown_domain() -> None:
    fed = load_federation(FederationConfig(domains=["noisy", "original"]), seed=0)
    assert fed.domain_names == ["noisy", "original"]
    assert fed.default_target == "noisy"  # default not in the subset -> first listed
    with pytest.raises(DataError, match=r"unknown domain 'mnist'.*original, rotated"):
        load_federation(FederationConfig(domains=["mnist", "original"]), seed=0)


def test_make_clients_covers_sources(fed: FederationData) -> None:
    cfg = FederationConfig(clients_per_domain=2)
    clients = make_clients(fed, "", cfg, seed=0)
    assert [c.client_id for c in clients] == list(range(8))
    assert {c.domain for c in clients} == set(DOMAINS) - {"rotated"}
    for name in ("original", "colour"):
        mine = [c for c in clients if c.domain == name]
        assert sum(len(c.y_train) for c in mine) == len(fed.domains[name].y_train)
        assert sum(len(c.y_test) for c in mine) == len(fed.domains[name].y_test)
    with pytest.raises(DataError, match="unknown target domain 'svhn'; choose one of original"):
        make_clients(fed, "svhn", cfg, seed=0)
