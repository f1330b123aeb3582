"""`features` federation as users bring data: train/test file pairs, mapping, warnings, transforms."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from fedlab.config import FederationConfig, SimulationConfig, load_simulation_config
from fedlab.core.errors import DataError
from fedlab.data import clear_cache, load_federation, make_clients, prepare
from fedlab.data.feature_transform import fit_transform


def _svm(path: Path, n: int, offset: float = 0.0, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        counts = rng.poisson(2.0, size=5) + offset
        feats = " ".join(f"{j + 1}:{c}" for j, c in enumerate(counts) if c)
        lines.append(f"{1 if i % 2 else -1} {feats}\n")
    path.write_text("".join(lines))


def _load(**kw: object):
    clear_cache()
    return load_federation(FederationConfig(name="features", **kw), seed=0)


def test_train_test_pairs_make_one_domain_with_official_test(tmp_path: Path) -> None:
    _svm(tmp_path / "books_train.svmlight", 40, seed=1)
    _svm(tmp_path / "books_test.svmlight", 25, seed=2)
    _svm(tmp_path / "dvd-Train.svmlight", 30, seed=3)
    _svm(tmp_path / "dvd-Test.svmlight", 20, seed=4)
    _svm(tmp_path / "kitchen.svmlight", 50, seed=5)
    fed = _load(data_dir=str(tmp_path))
    assert fed.domain_names == ["books", "dvd", "kitchen"]
    books = fed.domains["books"]
    assert len(books.y_train) == 40 and len(books.y_test) == 25  # the test file, untouched
    assert len(fed.domains["dvd"].y_test) == 20
    assert fed.domains["kitchen"].size == 50  # one file: split with test_fraction
    # the target's test set is its test file: the run seed never changes it
    clear_cache()
    again = load_federation(FederationConfig(name="features", data_dir=str(tmp_path)), seed=5)
    np.testing.assert_array_equal(again.domains["books"].x_test, books.x_test)


def test_toml_mapping_and_pattern(tmp_path: Path) -> None:
    _svm(tmp_path / "b_tr.svm.txt", 30, seed=1)
    _svm(tmp_path / "b_te.svm.txt", 12, seed=2)
    _svm(tmp_path / "d_all.txt", 30, seed=3)
    files = {"books": {"train": "b_tr.svm.txt", "test": "b_te.svm.txt"}, "dvd": {"train": "d_all.txt"}}
    fed = _load(data_dir=str(tmp_path), files=files)
    assert fed.domain_names == ["books", "dvd"] and len(fed.domains["books"].y_test) == 12
    with pytest.raises(DataError, match=r"files\.dvd\.train = 'missing\.txt'"):
        _load(data_dir=str(tmp_path), files={**files, "dvd": {"train": "missing.txt"}})
    with pytest.raises(ValueError, match="expected keys train"):
        FederationConfig(name="features", files={"x": {"test": "a.txt"}})
    only = _load(data_dir=str(tmp_path), pattern="b_*")
    assert only.domain_names == ["b_te.svm", "b_tr.svm"]  # no _train/_test suffix: two domains


def test_lone_test_file_is_an_error(tmp_path: Path) -> None:
    _svm(tmp_path / "books_test.svmlight", 20)
    _svm(tmp_path / "dvd.svmlight", 20)
    with pytest.raises(DataError, match=r"books_test\.svmlight: test file of domain 'books' without"):
        _load(data_dir=str(tmp_path))


def test_split_like_stems_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _svm(tmp_path / "books_1.svmlight", 20, seed=1)
    _svm(tmp_path / "books_2.svmlight", 20, seed=2)
    _svm(tmp_path / "dvd.svmlight", 20, seed=3)
    with caplog.at_level(logging.WARNING, logger="fedlab.data.features"):
        fed = _load(data_dir=str(tmp_path))
    assert fed.domain_names == ["books_1", "books_2", "dvd"]
    assert "'books_1', 'books_2' look like splits of one domain 'books'" in caplog.text
    assert "dvd" not in caplog.text


def test_transforms_are_fitted_on_source_training_rows_only(tmp_path: Path) -> None:
    _svm(tmp_path / "books.svmlight", 60, seed=1)
    _svm(tmp_path / "dvd.svmlight", 60, seed=2)
    _svm(tmp_path / "kitchen.svmlight", 60, offset=50.0, seed=3)  # far larger counts
    raw = _load(data_dir=str(tmp_path))
    fed = _load(data_dir=str(tmp_path), transform="zscore")
    ready = prepare(fed, "kitchen")
    src = np.concatenate([ready.domains[d].x_train for d in ("books", "dvd")])
    np.testing.assert_allclose(src.mean(axis=0), 0.0, atol=1e-5)  # standardised on the sources ...
    assert ready.domains["kitchen"].x_test.mean() > 10  # ... the target is only transformed
    # the fitted parameters come from the source training rows, nothing else
    manual = fit_transform("zscore", np.concatenate([raw.domains[d].x_train for d in ("books", "dvd")]))
    np.testing.assert_allclose(ready.domains["kitchen"].x_train, manual.apply(raw.domains["kitchen"].x_train))
    clients = make_clients(fed, "kitchen", FederationConfig(name="features"), seed=0)
    np.testing.assert_allclose(clients[0].x_train, ready.domains["books"].x_train)
    logged = prepare(_load(data_dir=str(tmp_path), transform="log1p"), "kitchen")
    np.testing.assert_allclose(logged.domains["dvd"].x_test, np.log1p(raw.domains["dvd"].x_test), rtol=1e-6)
    tfidf = prepare(_load(data_dir=str(tmp_path), transform="tfidf"), "kitchen")
    np.testing.assert_allclose(np.linalg.norm(tfidf.domains["kitchen"].x_test, axis=1), 1.0, rtol=1e-5)


def test_tfidf_idf_values_and_negative_counts() -> None:
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    fitted = fit_transform("tfidf", x)
    np.testing.assert_allclose(fitted.scale, [np.log(4 / 3) + 1, np.log(4 / 2) + 1])
    with pytest.raises(DataError, match="needs non-negative counts; column 1"):
        fit_transform("log1p", np.array([[1.0, -2.0]]))


def test_saved_config_holds_no_options_of_other_federations(tmp_path: Path) -> None:
    cfg = load_simulation_config(
        None, {"federation.name": "features", "federation.data_dir": "d", "federation.transform": "tfidf"}
    )
    saved = cfg.saved_dict()
    fed = saved["federation"]
    assert fed["transform"] == "tfidf" and fed["pattern"] == "*"
    for other in ("csv", "domain_column", "label_column", "protected", "features"):
        assert other not in fed
    assert "anonymize" not in saved
    # and it reads back to the same config
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(saved))
    assert SimulationConfig.model_validate(tomllib.loads(path.read_text())) == cfg
    office = load_simulation_config(None, {"federation.name": "office-caltech10"}).saved_dict()
    assert office["federation"]["features"] == "surf" and "pattern" not in office["federation"]
