"""``features``: generic per-domain feature files; one file = one domain named by its stem.

Why: many domain-adaptation benchmarks (Amazon Review bag-of-words, Office-Caltech DeCAF,
...) are just "one feature matrix + labels per domain", so they need no code of their own.
Files are those in ``data_dir`` matching ``cfg.pattern`` (a glob, ``**`` allowed) with a
known suffix; others are ignored:

- ``.svmlight`` / ``.libsvm`` / ``.txt``: svmlight format, all such files read together so
  they share one ``n_features`` (the largest index seen in any domain);
- ``.npz``: arrays ``x``/``y`` or ``X``/``y`` (or ``X``/``Y``);
- ``.mat``: ``fts``/``labels``, ``fea``/``gnd``, ``feas``/``labels`` or ``X``/``y``
  (MATLAB v5; v7.3/HDF5 files are read with h5py);
- ``.csv``: a header row; the label is the column named ``label`` or ``y`` (any case), else
  the last column; every other column must be numeric.

Official test files: ``<domain>_train.<ext>`` next to ``<domain>_test.<ext>`` (also ``-`` or
``.`` before train/test, any case) form ONE domain whose test file is its test set (for the
target: the fixed test set, the train file being the unlabeled pool); or name the files in
``federation.files`` (TOML: ``[federation.files.books] train = "b_tr.svm"; test = "b_te.svm"``).
A lone ``<domain>_train`` file is split with ``test_fraction``; a lone ``<domain>_test`` is an
error. Stems that still look like pieces of one domain (``books_1``/``books_2``, ``books_val``,
``books_unlabeled``...) are loaded as separate domains with a warning, since a leave-one-out
run would then train on part of its own target. ``federation.transform`` (log1p / tfidf /
zscore) is fitted on the source domains' training rows only (`fedlab.data.feature_transform`).

Output: dense float32 (N, D) and int64 labels re-indexed to 0..C-1 over the union of all
domains' label values (sorted numerically when they are numbers), so a label means the same
class in every domain; the original values are kept as ``class_names``.

This module also holds the array-file readers the image loaders reuse.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedlab.config import FederationConfig
from fedlab.core.errors import DataError
from fedlab.core.tables import check_finite, check_finite_array, check_unique_header, no_complete_rows
from fedlab.data.base import FederationData, RawDomain, Source

log = logging.getLogger("fedlab.data.features")
SVMLIGHT_SUFFIXES = (".svmlight", ".libsvm", ".txt")
_SPLIT = re.compile(r"^(?P<domain>.+?)[_.\-](?P<split>train|test)$", re.IGNORECASE)
_PIECE = re.compile(
    r"^(?P<base>.+?)[_.\- ]?(?:train|test|val|valid|validation|dev|unlabeled|unlabelled|labeled|labelled"
    r"|part\d+|split\d+|fold\d+|\d+)$",
    re.IGNORECASE,
)
SUFFIXES = (*SVMLIGHT_SUFFIXES, ".npz", ".mat", ".csv")
VECTOR_PAIRS: tuple[tuple[str, str], ...] = (
    ("fts", "labels"),
    ("fea", "gnd"),
    ("feas", "labels"),
    ("x", "y"),
    ("X", "y"),
    ("X", "Y"),
    ("features", "labels"),
    ("data", "labels"),
    ("data", "target"),
)


# -- array-file readers (shared with the image loaders) -----------------------------------


def _flatten_h5(group: object, prefix: str, out: dict[str, np.ndarray], transpose: bool) -> None:
    import h5py

    assert isinstance(group, h5py.Group)
    for key, item in group.items():
        name = f"{prefix}{key}"
        if isinstance(item, h5py.Group):
            _flatten_h5(item, f"{name}_", out, transpose)
        elif isinstance(item, h5py.Dataset) and item.dtype.kind in "biuf":
            arr = item[()]
            # MATLAB v7.3 stores column-major: reverse the axes to match scipy.io.loadmat.
            out[name] = arr.T if transpose else arr


def read_arrays(path: Path, expected: str) -> dict[str, Any]:
    """All numeric arrays of an .npz / .mat / .h5 file as a flat dict (HDF5 'a/b' -> 'a_b').

    ``expected`` describes the wanted content for the one-line `DataError` on a bad file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        if suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                out: dict[str, np.ndarray] = {}
                _flatten_h5(f, "", out, transpose=False)
                return out
        if suffix == ".mat":
            import scipy.io

            try:
                mat = scipy.io.loadmat(path)
            except NotImplementedError:  # MATLAB v7.3 = HDF5
                import h5py

                with h5py.File(path, "r") as f:
                    out = {}
                    _flatten_h5(f, "", out, transpose=True)
                    return out
            import scipy.sparse

            return {
                k: v
                for k, v in mat.items()
                if not k.startswith("__") and (isinstance(v, np.ndarray) or scipy.sparse.issparse(v))
            }
    except DataError:
        raise
    except Exception as exc:  # corrupt/truncated files raise many different types
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc}); expected {expected}") from exc
    raise DataError(f"{path}: unsupported file type {suffix!r}; expected {expected}")


def as_labels(y: np.ndarray, path: Path, key: str, numeric: bool = True) -> np.ndarray:
    """(N,), (N, 1) or one-hot (N, C) labels -> (N,): int64, or as stored when not ``numeric``."""
    y = np.asarray(y)
    if y.dtype.kind in "USO":
        if numeric:
            raise DataError(f"{path}: labels {key!r} are text ({y.dtype}); expected integer class labels")
        return y.reshape(-1)
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    elif y.ndim == 2:
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise DataError(
            f"{path}: labels {key!r} have shape {y.shape}; expected (N,), (N, 1) or one-hot (N, C)"
        )
    if not numeric:
        return y
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise DataError(f"{path}: labels {key!r} are not whole numbers")
    return y.astype(np.int64)


def find_pairs(
    arrays: dict[str, Any],
    pairs: Sequence[tuple[str, str]],
    path: Path,
    expected: str,
    numeric: bool = True,
) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(x, y, x_key) for each known (data, label) key pair present; a label key is used once."""
    found: list[tuple[np.ndarray, np.ndarray, str]] = []
    used: set[str] = set()
    for xk, yk in pairs:
        if xk in arrays and yk in arrays and yk not in used and xk not in used:
            used.update((xk, yk))
            found.append((arrays[xk], as_labels(arrays[yk], path, yk, numeric), xk))
    if not found:
        raise DataError(
            f"{path}: no known data/label arrays (found {', '.join(sorted(arrays)) or 'none'}); "
            f"expected {expected}"
        )
    return found


# -- the `features` federation ------------------------------------------------------------


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    check_unique_header(path)
    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except Exception as exc:
        raise DataError(f"{path}: cannot read CSV ({type(exc).__name__}); expected a header row") from exc
    if len(df) == 0:
        raise no_complete_rows(df, str(path))
    if df.shape[1] < 2:
        raise DataError(
            f"{path}: CSV has {df.shape[1]} columns and {len(df)} rows; expected features + label"
        )
    lower = {str(c).lower(): c for c in df.columns}
    label = lower.get("label", lower.get("y", df.columns[-1]))
    feats = df.drop(columns=[label])
    bad = [c for c in feats.columns if not pd.api.types.is_numeric_dtype(feats[c])]
    if bad:
        raise DataError(
            f"{path}: column {bad[0]!r} is not numeric; expected numeric features and label {label!r}"
        )
    if feats.isna().any().any():
        col = feats.columns[feats.isna().any()][0]
        raise DataError(f"{path}: column {col!r} has missing values; expected complete numeric features")
    check_finite(feats, str(path))
    return feats.to_numpy(np.float32), df[label].to_numpy()


def _read_vectors(path: Path) -> tuple[np.ndarray, np.ndarray]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    expected = "arrays " + ", ".join(f"{a}/{b}" for a, b in VECTOR_PAIRS)
    arrays = read_arrays(path, expected)
    x, y, xk = find_pairs(arrays, VECTOR_PAIRS, path, expected, numeric=False)[0]
    if hasattr(x, "toarray"):
        x = x.toarray()
    x = np.asarray(x)
    if x.ndim != 2 or len(x) != len(y):
        raise DataError(f"{path}: {xk!r} has shape {x.shape} for {len(y)} labels; expected (N, D)")
    check_finite_array(x, str(path), f"array {xk!r}")
    return x.astype(np.float32), y


def _label_name(v: object) -> str:
    """1.0 -> "1" (svmlight labels are floats), anything else -> str(v)."""
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _sort_key(name: str) -> tuple[int, float, str]:
    try:
        return (0, float(name), "")
    except ValueError:
        return (1, 0.0, name)


def read_feature_domains(files: Sequence[Path]) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """{stem: (x float32 (N, D), y int64)} with a common D and a common label index, + class names."""
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    svm = [f for f in files if f.suffix.lower() in SVMLIGHT_SUFFIXES]
    if svm:
        from sklearn.datasets import load_svmlight_file, load_svmlight_files

        try:
            loaded = load_svmlight_files([str(f) for f in svm], dtype=np.float32)
        except Exception as exc:
            for f in svm:  # re-read one by one to name the offending file
                try:
                    load_svmlight_file(str(f))
                except Exception as exc2:
                    raise DataError(f"{f}: not a valid svmlight/libsvm file ({exc2})") from exc2
            raise DataError(f"{svm[0].parent}: cannot read svmlight files together ({exc})") from exc
        for i, f in enumerate(svm):
            raw[f.stem] = (np.asarray(loaded[2 * i].toarray(), np.float32), np.asarray(loaded[2 * i + 1]))
    for f in files:
        if f.suffix.lower() not in SVMLIGHT_SUFFIXES:
            if f.stem in raw:
                raise DataError(f"{f}: two files define domain {f.stem!r}; expected one file per domain")
            raw[f.stem] = _read_vectors(f)
    dims = {name: x.shape[1] for name, (x, _) in raw.items()}
    if len(set(dims.values())) > 1:
        raise DataError(f"feature files disagree on the number of features: {dims}; expected one common D")
    labels = {stem: [_label_name(v) for v in y.tolist()] for stem, (_, y) in raw.items()}
    names = sorted({n for ls in labels.values() for n in ls}, key=_sort_key)
    index = {n: i for i, n in enumerate(names)}
    out = {
        stem: (x, np.array([index[n] for n in labels[stem]], dtype=np.int64)) for stem, (x, _) in raw.items()
    }
    return out, names


def feature_files(data_dir: Path, pattern: str) -> list[Path]:
    if not data_dir.is_dir():
        raise DataError(f"features: data_dir {str(data_dir)!r} is not a folder; expected one file per domain")
    files = sorted(p for p in data_dir.glob(pattern) if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise DataError(
            f"features: no files matching {pattern!r} with suffix {', '.join(SUFFIXES)} in {data_dir}"
        )
    return files


def pair_files(files: Sequence[Path]) -> dict[str, dict[str, Path]]:
    """{domain: {"train": path[, "test": path]}} from file stems; see the module docstring."""
    out: dict[str, dict[str, Path]] = {}
    for f in files:
        m = _SPLIT.match(f.stem)
        domain, split = (m["domain"], m["split"].lower()) if m else (f.stem, "train")
        slot = out.setdefault(domain, {})
        if split in slot:
            raise DataError(
                f"{f}: domain {domain!r} already has a {split} file ({slot[split]}); expected one"
            )
        slot[split] = f
    for domain, slot in out.items():
        if "train" not in slot:
            raise DataError(f"{slot['test']}: test file of domain {domain!r} without a {domain}_train file")
        if "test" not in slot and _SPLIT.match(slot["train"].stem):
            log.warning(
                "features: %s has no %s_test file; it is split with test_fraction", slot["train"], domain
            )
    return out


def warn_split_stems(domains: Sequence[str]) -> list[str]:
    """Warn (and return the messages) when several domains look like pieces of one."""
    groups: dict[str, list[str]] = {}
    for d in domains:
        m = _PIECE.match(d)
        groups.setdefault(m["base"].lower() if m else d.lower(), []).append(d)
    messages = []
    for base, names in groups.items():
        if len(names) > 1:
            msg = (
                f"features: domains {', '.join(repr(n) for n in names)} look like splits of one domain "
                f"{base!r}; each file is loaded as its own domain (name them {base}_train / {base}_test "
                "or map them in federation.files to use a test file)"
            )
            log.warning(msg)
            messages.append(msg)
    return messages


def _mapped_files(data_dir: Path, files: dict[str, dict[str, str]]) -> dict[str, dict[str, Path]]:
    out: dict[str, dict[str, Path]] = {}
    for domain, split in files.items():
        out[domain] = {}
        for key, name in split.items():
            path = Path(name).expanduser()
            path = path if path.is_absolute() else data_dir / path
            if not path.is_file() or path.suffix.lower() not in SUFFIXES:
                raise DataError(
                    f"features: files.{domain}.{key} = {name!r}: {path} is not a file with suffix "
                    f"{', '.join(SUFFIXES)}"
                )
            out[domain][key] = path
    return out


def features_source(cfg: FederationConfig) -> Source:
    if not cfg.data_dir and not cfg.files:
        raise DataError(
            "features: federation.data_dir is empty; expected a folder of per-domain feature files"
        )
    data_dir = Path(cfg.data_dir).expanduser()
    if cfg.files:
        pairs = _mapped_files(data_dir, cfg.files)
    else:
        pairs = pair_files(feature_files(data_dir, cfg.pattern))
        warn_split_stems(list(pairs))
    flat = [p for slot in pairs.values() for p in slot.values()]
    if len({p.stem for p in flat}) != len(flat):
        raise DataError(
            f"features: two files share a stem in {sorted(str(p) for p in flat)}; expected unique"
        )
    arrays, names = read_feature_domains(flat)

    def loader(domain: str) -> RawDomain:
        slot = pairs[domain]
        x, y = arrays[slot["train"].stem]
        if "test" not in slot:
            return RawDomain(x=x, y=y)
        xt, yt = arrays[slot["test"].stem]
        return RawDomain(x=x, y=y, x_test=xt, y_test=yt)

    dim = next(iter(arrays.values()))[0].shape[1]

    def finish(fed: FederationData) -> FederationData:
        from fedlab.data.feature_transform import with_transform

        return with_transform(fed, cfg.transform)

    return Source(
        name="features",
        domains={domain: functools.partial(loader, domain) for domain in pairs},
        num_classes=len(names),
        input_shape=(dim,),
        kind="vector",
        class_names=names,
        default_target=next(iter(pairs)),
        finish=finish,
    )
