"""``digit-five``: MNIST, MNIST-M, USPS, SVHN and SynthDigits from the user's own files.

Expected layout of ``data_dir`` (one sub-folder per domain, any subset, at least two; folder
names are matched case-insensitively; every recognised file in a folder is used)::

    data_dir/
      mnist/    *images-idx3-ubyte[.gz] + *labels-idx1-ubyte[.gz]   (train and/or t10k pairs)
      mnistm/   *.npz with x/y (or x_train/y_train, x_test/y_test)   also mnist_m/, mnist-m/
                or *.mat with train/test + label_train/label_test    (M3SDA mnistm_with_label.mat)
      usps/     *.h5 with train/data, train/target, test/data, test/target  (16x16 in [0,1])
                or *.mat / *.npz
      svhn/     *.mat with X (32, 32, 3, N) and y (N, 1); label 10 means digit 0
      syn/      *.mat / *.npz (e.g. train_data/train_label)    also synth/, synthdigits/, syn_digits/

Any of .npz / .mat / .h5 works in any folder; images may be (N, H, W), (N, H, W, C),
(N, C, H, W), (H, W, C, N) or flat (N, H*W); uint8 0..255 or float in [0, 1]; labels (N,),
(N, 1) or one-hot. SVHN labels 10 -> 0 (and the same MATLAB convention in any domain whose
labels are 1..10 with no 0). As in the FedKA paper every image becomes 28x28x3 (grey is
repeated over 3 channels): float32 NCHW in [0, 1], resized bilinearly with
``torch.nn.functional.interpolate`` in batches, after ``max_per_domain`` subsampling so only
kept images are resized.

Official splits: an array or file is TEST data when its key or file name says so (``x_test``,
``test_data``, ``test``, ``test_28``, ``t10k-*``, ``*_test.npz``, ...); everything else is
training data. A domain with both keeps the official test split as its test set (the target's
test set; capped by ``max_test_per_domain``) and its training split as train rows / the
target's unlabeled pool. A domain whose files hold only one of the two (e.g. only MNIST's t10k
files) is split by fedlab with the fixed ``split_seed`` and ``test_fraction``.
"""

from __future__ import annotations

import functools
import gzip
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fedlab.config import FederationConfig
from fedlab.core.errors import DataError
from fedlab.data.base import RawDomain, Source
from fedlab.data.features import find_pairs, read_arrays

SIZE = 28
DOMAINS = ("mnist", "mnistm", "usps", "svhn", "syn")
DEFAULT_TARGET_ORDER = ("mnistm", "svhn", "syn", "usps", "mnist")
_ALIASES = {
    "mnist": "mnist",
    "mnistm": "mnistm",
    "mnist_m": "mnistm",
    "mnist-m": "mnistm",
    "usps": "usps",
    "svhn": "svhn",
    "syn": "syn",
    "synth": "syn",
    "synthdigits": "syn",
    "syn_digits": "syn",
    "synth_digits": "syn",
    "syndigits": "syn",
}
_ARRAY_SUFFIXES = (".npz", ".mat", ".h5", ".hdf5")
IMAGE_PAIRS: tuple[tuple[str, str], ...] = (
    ("x", "y"),
    ("X", "y"),
    ("X", "Y"),
    ("images", "labels"),
    ("data", "target"),
    ("data", "labels"),
    ("x_train", "y_train"),
    ("x_test", "y_test"),
    ("train_data", "train_target"),
    ("test_data", "test_target"),
    ("train_data", "train_label"),
    ("test_data", "test_label"),
    ("train_x", "train_y"),
    ("test_x", "test_y"),
    ("train", "label_train"),
    ("test", "label_test"),
    ("train_28", "label_train"),
    ("test_28", "label_test"),
    ("train_32", "label_train"),
    ("test_32", "label_test"),
)
_EXPECTED_ARRAYS = "image/label arrays such as x/y, X/y, train/label_train or train/data + train/target"
_EXPECTED_IDX = "IDX files *images-idx3-ubyte[.gz] with matching *labels-idx1-ubyte[.gz]"


# -- readers ------------------------------------------------------------------------------


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX (MNIST) file, gzipped or not, as uint8 with the dimensions in its header."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc}); expected {_EXPECTED_IDX}") from exc
    kind = "images (magic 2051)" if magic == 2051 else "labels (magic 2049)"
    if len(raw) < 8 or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(f"{path}: not an IDX {kind} file; expected {_EXPECTED_IDX}")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    start = 4 + 4 * ndim
    if len(raw) - start != int(np.prod(dims)):
        raise DataError(f"{path}: IDX header says {dims} but has {len(raw) - start} data bytes (truncated?)")
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims)


def _read_mnist_idx(folder: Path) -> list[tuple[np.ndarray, np.ndarray, Path]]:
    images = sorted(p for p in folder.iterdir() if "images-idx3-ubyte" in p.name)
    out = []
    for img in images:
        prefix = img.name.split("images-idx3-ubyte")[0]
        labels = [p for p in folder.iterdir() if p.name.startswith(prefix) and "labels-idx1-ubyte" in p.name]
        if not labels:
            raise DataError(f"{img}: no matching {prefix}labels-idx1-ubyte[.gz] next to it")
        x = read_idx(img, 2051)
        y = read_idx(sorted(labels)[0], 2049).astype(np.int64)
        if len(x) != len(y):
            raise DataError(f"{img}: {len(x)} images but {labels[0].name} has {len(y)} labels")
        out.append((x, y, img))
    return out


def to_nhwc(x: np.ndarray, n: int, path: Path, key: str) -> np.ndarray:
    """Any common image-array layout with ``n`` samples -> (N, H, W, C), C in {1, 3}."""
    x = np.asarray(x)
    shape = x.shape
    bad = DataError(
        f"{path}: images {key!r} have shape {shape} for {n} labels; expected (N,H,W), (N,H,W,C), "
        "(N,C,H,W), (H,W,C,N) or (N,H*W)"
    )
    if x.ndim == 4 and shape[-1] == n and shape[-2] in (1, 3) and not (shape[0] == n and shape[-1] in (1, 3)):
        x = np.moveaxis(x, -1, 0)  # MATLAB (H, W, C, N), e.g. SVHN
    elif x.ndim == 3 and shape[0] != n and shape[-1] == n:
        x = np.moveaxis(x, -1, 0)
    if x.shape[0] != n:
        raise bad
    if x.ndim == 2:
        side = round(float(np.sqrt(x.shape[1])))
        if side * side == x.shape[1]:
            return x.reshape(n, side, side, 1)
        side = round(float(np.sqrt(x.shape[1] / 3)))
        if 3 * side * side == x.shape[1]:
            return x.reshape(n, side, side, 3)
        raise bad
    if x.ndim == 3:
        return x[..., None]
    if x.ndim == 4:
        if x.shape[-1] in (1, 3):
            return x
        if x.shape[1] in (1, 3):
            return np.moveaxis(x, 1, -1)
    raise bad


def _scaled(x: np.ndarray) -> np.ndarray:
    """Keep uint8 as is (compact; scaled in the transform); floats -> float32 in [0, 1]."""
    if x.dtype == np.uint8:
        return x
    x = x.astype(np.float32)
    if x.size and float(x.max()) > 1.0 + 1e-6:
        x = x / 255.0
    return x


def to_model_input(x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """(N, H, W, C) uint8/float -> float32 (N, 3, 28, 28) in [0, 1], resized in batches."""
    out = np.empty((len(x), 3, SIZE, SIZE), dtype=np.float32)
    for start in range(0, len(x), batch):
        chunk = np.ascontiguousarray(x[start : start + batch])
        t = torch.from_numpy(chunk if chunk.flags.writeable else chunk.copy())
        t = t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()
        t = t.permute(0, 3, 1, 2)
        if t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)
        if t.shape[-2:] != (SIZE, SIZE):
            shrink = t.shape[-1] > SIZE or t.shape[-2] > SIZE
            t = F.interpolate(t, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=shrink)
        out[start : start + len(t)] = t.clamp(0.0, 1.0).numpy()
    return out


def _fix_labels(y: np.ndarray, domain: str, path: Path) -> np.ndarray:
    y = y.copy()
    if domain == "svhn" or (len(y) and y.min() >= 1 and y.max() == 10):
        y[y == 10] = 0  # MATLAB convention: class "10" is the digit 0
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{path}: labels range {y.min()}..{y.max()}; expected digits 0..9 (or 10 meaning 0)")
    return y


def read_domain(folder: Path, domain: str) -> RawDomain:
    """All recognised files of one domain folder, concatenated."""
    parts: list[tuple[np.ndarray, np.ndarray, Path]] = []
    is_test: list[bool] = []
    if any("images-idx3-ubyte" in p.name for p in folder.iterdir()):
        for x, y, p in _read_mnist_idx(folder):
            parts.append((to_nhwc(x, len(y), p, "images"), y, p))
            is_test.append(_says_test(p.name))
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _ARRAY_SUFFIXES):
        arrays = read_arrays(path, _EXPECTED_ARRAYS)
        if "dataset" in arrays and arrays["dataset"].dtype == object:  # M3SDA usps_28x28.mat cell array
            cell = arrays.pop("dataset")
            for i, row in enumerate(cell.reshape(-1, cell.shape[-1])):
                arrays[f"cell{i}_x"], arrays[f"cell{i}_y"] = row[0], row[1]
        pairs = [*IMAGE_PAIRS, *((f"cell{i}_x", f"cell{i}_y") for i in range(4))]
        for x, y, key in find_pairs(arrays, pairs, path, _EXPECTED_ARRAYS):
            parts.append((to_nhwc(x, len(y), path, key), y, path))
            is_test.append(_says_test(key) or (not _says_train(key) and _says_test(path.stem)))
    if not parts:
        raise DataError(
            f"{folder}: no {domain} files found; expected "
            f"{_EXPECTED_IDX if domain == 'mnist' else 'a .npz, .mat or .h5 file with ' + _EXPECTED_ARRAYS}"
        )
    ys = [_fix_labels(y, domain, p) for _, y, p in parts]
    xs = [_scaled(x) for x, _, _ in parts]
    if len({x.shape[1:] for x in xs}) > 1 or len({x.dtype for x in xs}) > 1:
        xs = [to_model_input(x).transpose(0, 2, 3, 1) for x in xs]  # mixed sizes: unify up front
    if any(is_test) and not all(is_test):  # official train and test splits
        train = [i for i, t in enumerate(is_test) if not t]
        test = [i for i, t in enumerate(is_test) if t]
        return RawDomain(
            x=_join([xs[i] for i in train]),
            y=_join([ys[i] for i in train]),
            x_test=_join([xs[i] for i in test]),
            y_test=_join([ys[i] for i in test]),
            transform=to_model_input,
        )
    return RawDomain(x=_join(xs), y=_join(ys), transform=to_model_input)


def _join(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _says_test(name: str) -> bool:
    """Key or file name of an official test split (test, t10k), not e.g. 'contest'."""
    return re.search(r"(^|[^a-z])(test|t10k)([^a-z]|$)", name.lower()) is not None


def _says_train(name: str) -> bool:
    return re.search(r"(^|[^a-z])train([^a-z]|$)", name.lower()) is not None


def discover(data_dir: Path) -> dict[str, Path]:
    """{domain: folder} for the recognised sub-folders of ``data_dir``, in canonical order."""
    if not data_dir.is_dir():
        raise DataError(
            f"digit-five: data_dir {str(data_dir)!r} is not a folder; expected sub-folders "
            f"{', '.join(DOMAINS)}"
        )
    found: dict[str, Path] = {}
    for sub in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        domain = _ALIASES.get(re.sub(r"\s+", "", sub.name.lower()))
        if domain is not None and domain not in found:
            found[domain] = sub
    return {d: found[d] for d in DOMAINS if d in found}


def digit_five_source(cfg: FederationConfig) -> Source:
    if not cfg.data_dir:
        raise DataError("digit-five: federation.data_dir is empty; expected a folder with mnist/, usps/, ...")
    data_dir = Path(cfg.data_dir).expanduser()
    folders = discover(data_dir)
    if len(folders) < 2:
        raise DataError(
            f"digit-five: found {len(folders)} domain folder(s) ({', '.join(folders) or 'none'}) "
            f"in {data_dir}; expected at least 2 of {', '.join(DOMAINS)} (also mnist_m, synth)"
        )
    default = next(d for d in DEFAULT_TARGET_ORDER if d in folders)
    return Source(
        name="digit-five",
        domains={d: functools.partial(read_domain, folder, d) for d, folder in folders.items()},
        num_classes=10,
        input_shape=(3, SIZE, SIZE),
        kind="image",
        class_names=[str(i) for i in range(10)],
        default_target=default,
    )
