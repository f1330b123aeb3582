"""Preprocessing from per-client aggregates: exact, DP on request, and never pooling raw rows."""

from __future__ import annotations

import hashlib
import sys
from fractions import Fraction

import numpy as np
import pandas as pd

from fedlab.config import FederationConfig, load_simulation_config
from fedlab.data import load_federation, prepare
from fedlab.data.client_stats import add_laplace, array_stats, client_stats, combine, exact_sum
from fedlab.data.tabular import TabularFederation
from fedlab.runs.study import with_embedded_adult


def test_combined_aggregates_equal_the_pooled_ones_for_any_split() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(3.0, 2.0, 301), "b": rng.integers(0, 90, 301).astype(float)})
    frame["c"] = rng.choice(["x", "y", "z"], 301)
    pooled = client_stats(frame, ["a", "b"], ["c"])
    parts = [frame.iloc[:7], frame.iloc[7:150], frame.iloc[150:]]
    split = combine(client_stats(p, ["a", "b"], ["c"]) for p in parts)
    for col in ("a", "b"):
        assert split.mean(col) == pooled.mean(col) and split.std(col) == pooled.std(col)
        assert split.numeric[col].total == exact_sum(frame[col].to_numpy())
    # correctly rounded: the exact rational mean, rounded once
    assert split.mean("a") == float(sum(map(Fraction, frame["a"])) / 301)
    np.testing.assert_allclose(split.std("a"), frame["a"].std(ddof=0), rtol=1e-14)
    assert (
        split.vocabulary("c") == ["x", "y", "z"] and split.categories["c"]["x"] == (frame["c"] == "x").sum()
    )
    dense = array_stats(frame[["a", "b"]].to_numpy())
    assert dense.categories[1]["nonzero"] == int((frame["b"] != 0).sum())


def test_laplace_noise_is_seeded_and_reports_its_epsilon() -> None:
    frame = pd.DataFrame({"a": np.arange(200.0), "c": ["u", "v"] * 100})
    exact = client_stats(frame, ["a"], ["c"])
    noisy = add_laplace(exact, 1.0, 1000.0, np.random.default_rng(1))
    again = add_laplace(exact, 1.0, 1000.0, np.random.default_rng(1))
    assert noisy.epsilon == 1.0 and combine([noisy]).epsilon == 1.0
    assert noisy.mean("a") == again.mean("a") != exact.mean("a")
    assert abs(noisy.mean("a") - exact.mean("a")) < 200  # noise of scale clip/(ε/parts)/n


def _adult(tmp_path, **extra) -> TabularFederation:
    cfg = with_embedded_adult(load_simulation_config(None, {"federation.max_per_domain": 300}), tmp_path)
    return load_federation(FederationConfig(**{**cfg.federation.model_dump(), **extra}))


def _pooled_sklearn(fed: TabularFederation, target: str) -> TabularFederation:
    """The OLD preprocessing (the reference): sklearn fitted on the concatenated source rows."""
    from dataclasses import fields

    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from fedlab.data.base import Domain

    ct = ColumnTransformer(
        [
            ("num", StandardScaler(), fed.numeric_columns),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), fed.categorical_columns),
        ],
        sparse_threshold=0.0,
    )
    ct.fit(fed.frame(np.concatenate([d.x_train for n, d in fed.domains.items() if n != target])))

    def enc(x: np.ndarray) -> np.ndarray:
        return np.asarray(ct.transform(fed.frame(x)), dtype=np.float32)

    domains = {
        n: Domain(n, enc(d.x_train), d.y_train, enc(d.x_test), d.y_test, d.groups_train, d.groups_test)
        for n, d in fed.domains.items()
    }
    kw = {f.name: getattr(fed, f.name) for f in fields(fed) if f.init and f.name != "_prepared"}
    dim = next(iter(domains.values())).x_train.shape[1]
    kw.update(domains=domains, input_shape=(dim,), prepared_for=target, preprocessor=ct, raw=fed)
    return TabularFederation(**kw)


def test_tabular_features_equal_the_pooled_sklearn_fit(tmp_path) -> None:
    fed = _adult(tmp_path)
    ready = prepare(fed, fed.default_target)
    reference = _pooled_sklearn(fed, fed.default_target)
    for name, d in ready.domains.items():
        np.testing.assert_array_equal(d.x_train, reference.domains[name].x_train)
        np.testing.assert_array_equal(d.x_test, reference.domains[name].x_test)
    noisy = prepare(_adult(tmp_path, preprocess_dp={"epsilon": 1.0, "clip": 100.0}), fed.default_target)
    assert noisy.preprocessor.epsilon == 1.0
    assert not np.array_equal(noisy.preprocessor.mean, ready.preprocessor.mean)


def test_model_bytes_identical_to_the_pooled_fit(tmp_path, monkeypatch) -> None:
    """Same seed, same model.pt bytes: aggregates vs the old pooled sklearn fit."""
    from fedlab.data import registry
    from fedlab.federation import setup
    from fedlab.runs.simulate import simulate

    tiny = {
        "training.strategy": "fedavg",
        "training.rounds": 1,
        "training.local_steps": 3,
        "federation.max_per_domain": 300,
    }
    cfg = with_embedded_adult(load_simulation_config(None, tiny), tmp_path)

    def run(name: str) -> str:
        registry.clear_cache()
        setup._setup_cached.cache_clear()
        setup._setup_for_json.cache_clear()
        result = simulate(cfg, out=tmp_path / name)
        return hashlib.sha256((result.run_dir / "model.pt").read_bytes()).hexdigest()

    ours = run("aggregates")

    monkeypatch.setattr(TabularFederation, "_encode", _pooled_sklearn)
    assert run("pooled") == ours


# fedlab's preprocessing path: what runs between the clients' raw rows and the model-ready
# features (the anonymization library runs inside ONE client, on its own table, and pandas'
# internal block consolidation joins columns, not rows)
PREPROCESSING = {
    "fedlab.data.tabular",
    "fedlab.data.feature_transform",
    "fedlab.data.client_stats",
    "fedlab.data.registry",
    "fedlab.federation.anonymize",
    "fedlab.federation.setup",
}


def _guard(monkeypatch) -> list[str]:
    """Record every row-wise concatenation of two or more 2-D blocks (numpy or pandas) that
    fedlab's preprocessing code makes."""
    calls: list[str] = []

    def blocks(args) -> list:
        first = args[0] if args else []
        return [
            a for a in (first if isinstance(first, list | tuple) else [first]) if getattr(a, "ndim", 0) == 2
        ]

    def wrap(module, name: str, axis_default: int = 0):
        original = getattr(module, name)

        def guarded(*args, **kwargs):
            axis = kwargs.get("axis", args[1] if len(args) > 1 and isinstance(args[1], int) else axis_default)
            many = [b for b in blocks(args) if len(b)]
            if axis in (0, "index") and len(many) >= 2:
                caller = sys._getframe(1).f_globals.get("__name__", "")
                if caller in PREPROCESSING or caller == __name__:
                    calls.append(f"{module.__name__}.{name} of {len(many)} row blocks in {caller}")
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, guarded)

    for name in ("concatenate", "vstack", "row_stack"):
        if hasattr(np, name):
            wrap(np, name)
    wrap(pd, "concat")
    return calls


def test_no_preprocessing_path_pools_raw_rows_of_different_clients(tmp_path, monkeypatch) -> None:
    """Fails if any preprocessing path (tabular encoder, anonymized clients' encoder, features
    transforms) concatenates row blocks: each statistic must come from per-client aggregates."""
    from fedlab.data.feature_transform import TRANSFORMS, with_transform
    from fedlab.federation.anonymize import anonymize_federation

    fed = _adult(tmp_path)
    cfg = with_embedded_adult(
        load_simulation_config(None, {"federation.max_per_domain": 300, "anonymize.spec": "k=5"}), tmp_path
    )
    ready = prepare(fed, fed.default_target)
    from dataclasses import replace

    counts = {
        n: replace(d, x_train=np.abs(d.x_train), x_test=np.abs(d.x_test)) for n, d in ready.domains.items()
    }
    vectors = replace(ready, domains=counts)
    calls = _guard(monkeypatch)
    prepare(_adult(tmp_path, max_per_domain=299), fed.default_target)
    anonymize_federation(fed, fed.default_target, cfg)
    for kind in TRANSFORMS:
        prepare(with_transform(vectors, kind), fed.default_target)
    assert calls == []
    # the guard itself sees pooling when it happens
    np.concatenate([fed.domains[n].x_train for n in fed.domain_names[:2]])
    assert calls == [f"numpy.concatenate of 2 row blocks in {__name__}"]
