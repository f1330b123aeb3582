"""File-based federations: real reference files (skipped when absent) and small generated files."""

from __future__ import annotations

import gzip
import logging
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from conftest import shared_file

from fedlab.config import FederationConfig
from fedlab.core.errors import DataError
from fedlab.data import clear_cache, load_federation, make_clients, prepare
from fedlab.data.base import FederationData

# -- helpers --------------------------------------------------------------------------------


def _load(**kw: object) -> FederationData:
    clear_cache()  # generated files change between tests
    return load_federation(FederationConfig(**kw), seed=0)


def _all_rows(fed: FederationData, name: str) -> tuple[np.ndarray, np.ndarray]:
    d = fed.domains[name]
    return np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test])


def _check_images(fed: FederationData) -> None:
    assert fed.kind == "image" and fed.input_shape == (3, 28, 28) and fed.num_classes == 10
    for d in fed.domains.values():
        assert d.x_train.dtype == np.float32 and d.x_train.shape[1:] == (3, 28, 28)
        assert d.x_train.min() >= 0 and d.x_train.max() <= 1
        assert d.y_train.dtype == np.int64 and d.y_train.min() >= 0 and d.y_train.max() <= 9


def _label_images(y: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, size, size): every pixel = 20 * label, so labels can be checked after resizing."""
    return np.broadcast_to((20 * y).astype(np.uint8)[:, None, None], (len(y), size, size)).copy()


def _write_idx(path: Path, arr: np.ndarray, magic: int, gz: bool = True) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


N = 60
LABELS = np.arange(N) % 10


def _digit_five_tree(root: Path) -> Path:
    """All five domains, each in a different layout/format."""
    (root / "mnist").mkdir(parents=True)
    _write_idx(root / "mnist" / "train-images-idx3-ubyte.gz", _label_images(LABELS, 28), 2051)
    _write_idx(root / "mnist" / "train-labels-idx1-ubyte.gz", LABELS, 2049)
    _write_idx(root / "mnist" / "t10k-images-idx3-ubyte", _label_images(LABELS[:20], 28), 2051, gz=False)
    _write_idx(root / "mnist" / "t10k-labels-idx1-ubyte", LABELS[:20], 2049, gz=False)
    (root / "mnist_m").mkdir()
    rgb = np.repeat(_label_images(LABELS, 32)[..., None], 3, axis=-1)  # (N, 32, 32, 3)
    np.savez(root / "mnist_m" / "mnistm_test.npz", x=rgb, y=LABELS)
    (root / "usps").mkdir()
    with h5py.File(root / "usps" / "usps.h5", "w") as f:
        for split, ys in (("train", LABELS), ("test", LABELS[:10])):
            f[f"{split}/data"] = _label_images(ys, 16).reshape(len(ys), 256).astype(np.float32) / 255.0
            f[f"{split}/target"] = ys.astype(np.int32)
    (root / "SVHN").mkdir()
    svhn_y = np.where(LABELS == 0, 10, LABELS)  # MATLAB convention: 10 means digit 0
    svhn_x = np.transpose(np.repeat(_label_images(LABELS, 32)[..., None], 3, axis=-1), (1, 2, 3, 0))
    scipy.io.savemat(root / "SVHN" / "train_32x32.mat", {"X": svhn_x, "y": svhn_y.reshape(-1, 1)})
    (root / "synth").mkdir()
    one_hot = np.eye(10, dtype=np.uint8)[LABELS]
    syn_x = np.repeat(_label_images(LABELS, 32)[..., None], 3, axis=-1)
    scipy.io.savemat(root / "synth" / "syn_number.mat", {"train_data": syn_x, "train_label": one_hot})
    return root


# -- digit-five -----------------------------------------------------------------------------


def test_digit_five_generated_all_formats(tmp_path: Path) -> None:
    fed = _load(name="digit-five", data_dir=str(_digit_five_tree(tmp_path / "d5")))
    _check_images(fed)
    assert fed.domain_names == ["mnist", "mnistm", "usps", "svhn", "syn"]
    assert fed.default_target == "mnistm"
    sizes = {n: d.size for n, d in fed.domains.items()}
    assert sizes == {"mnist": N + 20, "mnistm": N, "usps": N + 10, "svhn": N, "syn": N}
    for name in fed.domain_names:
        x, y = _all_rows(fed, name)
        # each image's intensity encodes its label: the label survived layout changes and resizing
        np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 20 * y / 255.0, atol=2e-3, err_msg=name)
    assert set(_all_rows(fed, "svhn")[1]) == set(range(10))  # 10 -> 0


def test_digit_five_max_per_domain_and_subset(tmp_path: Path) -> None:
    root = _digit_five_tree(tmp_path / "d5")
    fed = _load(name="digit-five", data_dir=str(root), max_per_domain=30, domains=["svhn", "usps"])
    assert fed.domain_names == ["svhn", "usps"] and fed.default_target == "svhn"
    svhn, usps = fed.domains["svhn"], fed.domains["usps"]
    assert svhn.size == 30  # one split only: capped, then split by fedlab
    assert np.all(np.bincount(np.concatenate([svhn.y_train, svhn.y_test]), minlength=10) == 3)  # stratified
    # official train/test files: the cap applies to the training rows; the official test rows stay
    assert len(usps.y_train) == 30 and np.all(np.bincount(usps.y_train, minlength=10) == 3)
    np.testing.assert_array_equal(usps.y_test, LABELS[:10])
    with pytest.raises(DataError, match=r"unknown domain 'mnist_m'; valid domains are mnist, mnistm, usps"):
        _load(name="digit-five", data_dir=str(root), domains=["mnist_m", "usps"])


def test_digit_five_errors_name_the_file(tmp_path: Path) -> None:
    root = _digit_five_tree(tmp_path / "d5")
    bad = root / "mnist" / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated gzip
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz"):
        _load(name="digit-five", data_dir=str(root), domains=["mnist", "usps"])
    (root / "svhn" if (root / "svhn").exists() else root / "SVHN").joinpath("train_32x32.mat").write_bytes(
        b"junk"
    )
    with pytest.raises(DataError, match=r"train_32x32\.mat: cannot read.*expected image/label arrays"):
        _load(name="digit-five", data_dir=str(root), domains=["svhn", "usps"])
    (root / "usps" / "usps.h5").unlink()
    with pytest.raises(DataError, match=r"usps: no usps files found"):
        _load(name="digit-five", data_dir=str(root), domains=["usps", "syn"])
    with pytest.raises(DataError, match="found 1 domain folder"):
        only = tmp_path / "one"
        (only / "mnist").mkdir(parents=True)
        _load(name="digit-five", data_dir=str(only))
    with pytest.raises(DataError, match="is not a folder"):
        _load(name="digit-five", data_dir=str(tmp_path / "missing"))


def test_digit_five_official_test_split_is_kept(tmp_path: Path) -> None:
    root = _digit_five_tree(tmp_path / "d5")
    fed = _load(name="digit-five", data_dir=str(root), domains=["mnist", "usps", "mnistm"])
    mnist = fed.domains["mnist"]  # train-* and t10k-* files: t10k is the test set
    assert len(mnist.y_train) == N and len(mnist.y_test) == 20
    np.testing.assert_array_equal(mnist.y_test, LABELS[:20])
    assert fed.domains["mnistm"].size == N  # only mnistm_test.npz: split by fedlab (fixed seed)
    assert len(fed.domains["mnistm"].y_test) == 10  # round(0.2 * 6) rows of each of the 10 classes
    # the fixed split does not move with the run seed
    clear_cache()
    other = load_federation(FederationConfig(name="digit-five", data_dir=str(root)), seed=9)
    np.testing.assert_array_equal(other.domains["mnistm"].y_test, fed.domains["mnistm"].y_test)


def test_digit_five_missing_label_file(tmp_path: Path) -> None:
    root = _digit_five_tree(tmp_path / "d5")
    (root / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: no matching t10k-labels-idx1-ubyte"):
        _load(name="digit-five", data_dir=str(root), domains=["mnist", "usps"])


@pytest.mark.shared_data
def test_digit_five_shared(shared_data: Path) -> None:
    shared_file("digits", "mnist", "t10k-images-idx3-ubyte.gz")
    fed = _load(name="digit-five", data_dir=str(shared_data / "digits"), max_per_domain=500)
    _check_images(fed)
    assert fed.domain_names == ["mnist", "mnistm", "usps"] and fed.default_target == "mnistm"
    for name, d in fed.domains.items():
        assert len(d.y_train) == (500 if name == "usps" else 400) and len(np.unique(d.y_train)) == 10, name
    # USPS ships an official test split (2,007 images): it is the test set, never training rows
    assert len(fed.domains["usps"].y_test) == 2007
    capped = _load(
        name="digit-five", data_dir=str(shared_data / "digits"), max_per_domain=500, max_test_per_domain=300
    )
    assert len(capped.domains["usps"].y_test) == 300
    # MNIST-M is coloured, MNIST and USPS are grey
    assert np.abs(fed.domains["mnistm"].x_train[:, 0] - fed.domains["mnistm"].x_train[:, 2]).mean() > 0.01
    assert np.array_equal(fed.domains["usps"].x_train[:, 0], fed.domains["usps"].x_train[:, 2])


# -- office-caltech10 -----------------------------------------------------------------------


@pytest.mark.shared_data
def test_office_caltech_shared_surf(shared_data: Path) -> None:
    shared_file("office_caltech10", "surf", "amazon_SURF_L10.mat")
    fed = _load(name="office-caltech10", data_dir=str(shared_data / "office_caltech10"))
    assert fed.domain_names == ["amazon", "caltech", "dslr", "webcam"]
    assert {n: d.size for n, d in fed.domains.items()} == {
        "amazon": 958,
        "caltech": 1123,
        "dslr": 157,
        "webcam": 295,
    }
    assert fed.input_shape == (800,) and fed.kind == "vector" and fed.num_classes == 10
    for name in fed.domain_names:
        x, y = _all_rows(fed, name)
        assert x.dtype == np.float32 and set(y) == set(range(10))
        assert np.abs(x.mean(0)).max() < 1e-4  # z-scored with the domain's own statistics
        std = x.std(0)
        assert np.allclose(std[std > 0], 1, atol=1e-3)


def test_office_caltech_generated_decaf(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("amazon", "Caltech", "webcam"):
        fea = rng.random((40, 16)) * 5
        scipy.io.savemat(
            tmp_path / f"{name}_decaf.mat", {"fea": fea, "gnd": (np.arange(40) % 10 + 1)[:, None]}
        )
    fed = _load(name="office-caltech10", data_dir=str(tmp_path), features="decaf")
    assert fed.domain_names == ["amazon", "caltech", "webcam"] and fed.input_shape == (16,)
    assert set(_all_rows(fed, "webcam")[1]) == set(range(10))  # 1..10 -> 0..9
    with pytest.raises(DataError, match=r"found 0 surf file\(s\).*_SURF_L10\.mat"):
        _load(name="office-caltech10", data_dir=str(tmp_path), features="surf")
    scipy.io.savemat(tmp_path / "dslr_decaf.mat", {"feats": np.zeros((3, 16))})
    with pytest.raises(DataError, match=r"dslr_decaf\.mat: no known data/label arrays \(found feats\)"):
        _load(name="office-caltech10", data_dir=str(tmp_path), features="decaf")


# -- features -------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_features_on_shared_surf_files(shared_data: Path) -> None:
    shared_file("office_caltech10", "surf", "dslr_SURF_L10.mat")
    fed = _load(name="features", data_dir=str(shared_data / "office_caltech10"), pattern="surf/*.mat")
    assert fed.domain_names == ["Caltech10_SURF_L10", "amazon_SURF_L10", "dslr_SURF_L10", "webcam_SURF_L10"]
    assert fed.input_shape == (800,) and fed.class_names == [str(i) for i in range(1, 11)]
    assert fed.domains["dslr_SURF_L10"].size == 157


def test_features_svmlight_common_dimension_and_labels(tmp_path: Path) -> None:
    # books uses features up to index 7, dvd only up to 3; labels -1/1 (Amazon Review style)
    (tmp_path / "books.svmlight").write_text("".join(f"{1 if i % 2 else -1} 1:1 7:{i}\n" for i in range(20)))
    (tmp_path / "dvd.libsvm").write_text("".join(f"{1 if i % 3 else -1} 2:0.5 3:{i}\n" for i in range(20)))
    (tmp_path / "README.md").write_text("ignored: unknown suffix")
    fed = _load(name="features", data_dir=str(tmp_path))
    assert fed.domain_names == ["books", "dvd"] and fed.class_names == ["-1", "1"]
    assert fed.input_shape == (7,) and fed.domains["dvd"].x_train.shape[1] == 7
    assert fed.domains["dvd"].x_train.dtype == np.float32
    x, y = _all_rows(fed, "books")
    assert set(y) == {0, 1} and np.all(x[:, 0] == 1)


def test_features_npz_mat_csv_share_one_label_index(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", X=rng.random((30, 4)), y=np.arange(30) % 3 + 5)  # labels 5, 6, 7
    scipy.io.savemat(
        tmp_path / "b.mat", {"fts": rng.random((30, 4)), "labels": (np.arange(30) % 2 + 6)[:, None]}
    )
    rows = "\n".join(f"{i},{i * 2},{i % 3},{i},{[5, 7, 9][i % 3]}" for i in range(30))
    (tmp_path / "c.csv").write_text("f1,f2,f3,f4,label\n" + rows + "\n")
    fed = _load(name="features", data_dir=str(tmp_path))
    assert fed.class_names == ["5", "6", "7", "9"] and fed.num_classes == 4
    assert set(_all_rows(fed, "b")[1]) == {1, 2}  # 6, 7 -> same indices as in a
    assert set(_all_rows(fed, "c")[1]) == {0, 2, 3}


def test_features_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.zeros((10, 4)), y=np.zeros(10))
    (tmp_path / "b.csv").write_text("f1,colour,label\n1,red,0\n2,blue,1\n")
    with pytest.raises(DataError, match=r"b\.csv: column 'colour' is not numeric"):
        _load(name="features", data_dir=str(tmp_path))
    (tmp_path / "b.csv").write_text("f1,f2,label\n1,2,0\n2,3,1\n")
    with pytest.raises(DataError, match=r"disagree on the number of features"):
        _load(name="features", data_dir=str(tmp_path))
    (tmp_path / "b.csv").unlink()
    (tmp_path / "c.svmlight").write_text("this is not svmlight\n")
    with pytest.raises(DataError, match=r"c\.svmlight: not a valid svmlight"):
        _load(name="features", data_dir=str(tmp_path))
    with pytest.raises(DataError, match=r"no files matching '\*\.parquet'"):
        _load(name="features", data_dir=str(tmp_path), pattern="*.parquet")


# -- tabular ----------------------------------------------------------------------------------


ADULT = {"name": "tabular", "csv": "adult.data"}


@pytest.mark.shared_data
def test_tabular_adult_shared(shared_data: Path) -> None:
    shared_file("adult", "adult.data")
    cfg = FederationConfig(**ADULT, data_dir=str(shared_data / "adult"), clients_per_domain=2)
    clear_cache()
    fed = load_federation(cfg, seed=0)
    assert fed.domain_names == ["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"]
    assert fed.default_target == "Black" and fed.num_classes == 2
    assert fed.protected == {"sex": "Male", "race": "White"}
    assert sum(d.size for d in fed.domains.values()) == 30162  # rows with '?' dropped
    positive_rate = np.concatenate([d.y_train for d in fed.domains.values()]).mean()
    assert 0.2 < positive_rate < 0.3
    g = fed.domains["Black"].groups_train
    assert (
        list(g.columns) == ["sex", "race"]
        and set(g["race"]) == {"Black"}
        and set(g["sex"]) == {"Male", "Female"}
    )
    clients = make_clients(fed, "", cfg, seed=0)
    assert len(clients) == 8 and all(c.x_train.dtype == np.float32 for c in clients)
    assert all(len(c.groups_train) == len(c.y_train) for c in clients)
    ready = prepare(fed, "Black")
    # encoder statistics come from the sources' TRAIN rows only
    src = np.concatenate([fed.domains[n].x_train for n in fed.domain_names if n != "Black"])
    ages = src[:, ready.numeric_columns.index("age")].astype(float)
    assert np.isclose(ready.preprocessor.mean[0], ages.mean())
    assert ready.domains["Black"].x_test.shape[1] == clients[0].x_train.shape[1] == ready.input_shape[0]
    assert prepare(fed, "Black") is ready  # cached per target


@pytest.mark.shared_data
def test_tabular_adult_test_file_labels_with_dots(shared_data: Path) -> None:
    shared_file("adult", "adult.test")
    fed = _load(name="tabular", csv=str(shared_data / "adult" / "adult.test"))
    y = np.concatenate([d.y_train for d in fed.domains.values()])
    assert fed.class_names == ["<=50K", ">50K"] and 0.2 < y.mean() < 0.3


def _small_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    lines = ["age, sex, region, job, hours, paid"]
    regions = ["north"] * 200 + ["south"] * 120 + ["east"] * 30 + ["west"] * 25 + ["tiny"] * 3
    for i, region in enumerate(regions):
        job = "?" if i % 50 == 7 else ("pilot" if region == "south" and i % 2 else ["clerk", "cook"][i % 2])
        sex = "F" if i % 3 else "M"
        paid = "yes" if rng.random() < 0.4 else "no"
        lines.append(f"{20 + i % 40}, {sex}, {region}, {job}, {30 + i % 20}, {paid}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_tabular_generated_csv(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    csv = _small_csv(tmp_path / "people.csv")
    kw = {"name": "tabular", "data_dir": str(tmp_path), "csv": "people.csv", "domain_column": "region"}
    kw |= {"label_column": "paid", "positive_label": "yes", "protected": ["sex:F"]}
    with caplog.at_level(logging.WARNING):
        fed = _load(**kw)
    # east (30) + west (25) merged into "other" (55); "tiny" (3) alone would be < 50 -> merged too
    assert fed.domain_names == ["north", "south", "other"]
    assert fed.protected == {"sex": "F"} and fed.class_names == ["no", "yes"]
    sizes = {n: d.size for n, d in fed.domains.items()}
    assert sizes["north"] == 200 - sum(1 for i in range(200) if i % 50 == 7)  # '?' rows dropped
    assert fed.default_target == "south"
    cfg = FederationConfig(**kw)
    clients = make_clients(fed, "south", cfg, seed=0)
    ready = prepare(fed, "south")
    assert ready.preprocessor is not None and "region" not in ready.feature_columns
    job_categories = set(ready.preprocessor.categories["job"])
    assert "pilot" not in job_categories  # only in the target: never fitted on
    assert clients[0].x_train.shape[1] == ready.domains["south"].x_train.shape[1]
    # explicit privileged value must exist; unknown columns are named
    with pytest.raises(DataError, match=r"privileged value 'X' not in protected column 'sex'"):
        _load(**(kw | {"protected": ["sex:X"]}))
    with pytest.raises(
        DataError, match=r"people\.csv: label_column 'income' not found; columns are age, sex"
    ):
        _load(**(kw | {"label_column": "income"}))
    with pytest.raises(DataError, match=r"positive_label '>50K' not in column 'paid'; values are no, yes"):
        _load(**(kw | {"positive_label": ">50K"}))
    with pytest.raises(DataError, match=r"CSV file .*nope\.csv not found"):
        _load(**(kw | {"csv": "nope.csv"}))
    with pytest.raises(DataError, match="unknown target domain 'east'"):
        make_clients(fed, "east", cfg, seed=0)
    assert csv.exists()


def test_tabular_drops_lone_small_domain(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = ["x,grp,y"] + [f"{i},{'a' if i < 60 else 'b' if i < 120 else 'c'},{i % 2}" for i in range(125)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="fedlab.data.tabular"):
        fed = _load(
            name="tabular",
            csv=str(tmp_path / "t.csv"),
            domain_column="grp",
            label_column="y",
            positive_label="1",
        )
    assert fed.domain_names == ["a", "b"] and "dropping 5 rows" in caplog.text
    assert fed.protected == {}
