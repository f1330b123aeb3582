"""``office-caltech10``: the 10 classes shared by Office-31 and Caltech-256, four domains.

Files are searched anywhere under ``data_dir`` (so both ``data_dir/`` and ``data_dir/surf/``
layouts work), file names matched case-insensitively:

- ``features="surf"``: ``{amazon,Caltech10,dslr,webcam}_SURF_L10.mat`` with ``fts`` (N, 800)
  bag-of-visual-words counts and ``labels`` (N, 1) in 1..10 (Gong et al. CVPR 2012);
- ``features="decaf"``: ``*decaf*.mat`` (e.g. ``amazon_decaf.mat``) with ``fea``/``gnd``
  (or ``feas``/``labels``), 4096-d DeCAF6 activations.

Labels 1..10 become 0..9. Preprocessing, as usual in the domain-adaptation literature
(e.g. the GFK/JDA/CORAL code): SURF histograms are divided by their row sum (a histogram of
visual words, so every image counts the same regardless of how many keypoints it has);
DeCAF vectors are L2-normalised. Then each domain is z-scored with ITS OWN per-feature mean
and standard deviation over all its rows. Per-domain standardisation uses no labels and is
part of the benchmark's protocol: it removes first/second-order feature shift that would
otherwise swamp the comparison between methods.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from fedlab.config import FederationConfig
from fedlab.core.errors import DataError
from fedlab.data.base import RawDomain, Source
from fedlab.data.features import find_pairs, read_arrays

DOMAINS = ("amazon", "caltech", "dslr", "webcam")
DEFAULT_TARGET = "caltech"
CLASS_NAMES = [
    "back_pack",
    "bike",
    "calculator",
    "headphones",
    "keyboard",
    "laptop_computer",
    "monitor",
    "mouse",
    "mug",
    "projector",
]
_PAIRS = (("fts", "labels"), ("fea", "gnd"), ("feas", "labels"), ("feas", "gnd"), ("X", "y"))
_EXPECTED = {
    "surf": "{amazon,Caltech10,dslr,webcam}_SURF_L10.mat with fts (N, 800) and labels (N, 1) in 1..10",
    "decaf": "{amazon,caltech,dslr,webcam}_decaf.mat with fea (N, 4096) and gnd (N, 1) in 1..10",
}


def _domain_of(path: Path) -> str | None:
    stem = path.stem.lower()
    return next((d for d in DOMAINS if stem.startswith(d)), None)


def find_files(data_dir: Path, features: str) -> dict[str, Path]:
    """{domain: file} in canonical order; the first match (sorted paths) wins."""
    if not data_dir.is_dir():
        raise DataError(
            f"office-caltech10: data_dir {str(data_dir)!r} is not a folder; expected {_EXPECTED[features]}"
        )
    wanted = "_surf_l10" if features == "surf" else "decaf"
    found: dict[str, Path] = {}
    for path in sorted(data_dir.rglob("*.mat")):
        domain = _domain_of(path)
        if domain and wanted in path.stem.lower() and domain not in found:
            found[domain] = path
    return {d: found[d] for d in DOMAINS if d in found}


def preprocess(x: np.ndarray, features: str) -> np.ndarray:
    """Row-normalise (sum for SURF histograms, L2 for DeCAF), then z-score within the domain."""
    x = x.astype(np.float64)
    if features == "surf":
        norm = x.sum(axis=1, keepdims=True)
    else:
        norm = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norm > 0, norm, 1.0)
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return x.astype(np.float32)


def read_domain(path: Path, features: str, dim: int) -> RawDomain:
    arrays = read_arrays(path, _EXPECTED[features])
    x, y, key = find_pairs(arrays, _PAIRS, path, _EXPECTED[features])[0]
    x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
    if x.ndim != 2 or len(x) != len(y) or x.shape[1] != dim:
        raise DataError(
            f"{path}: {key!r} has shape {x.shape} for {len(y)} labels; expected ({len(y)}, {dim})"
        )
    if len(y) and (y.min() < 1 or y.max() > 10):
        raise DataError(f"{path}: labels range {y.min()}..{y.max()}; expected 1..10")
    return RawDomain(x=preprocess(x, features), y=y - 1)


def office_caltech_source(cfg: FederationConfig) -> Source:
    if not cfg.data_dir:
        raise DataError(f"office-caltech10: federation.data_dir is empty; expected {_EXPECTED[cfg.features]}")
    data_dir = Path(cfg.data_dir).expanduser()
    files = find_files(data_dir, cfg.features)
    if len(files) < 2:
        raise DataError(
            f"office-caltech10: found {len(files)} {cfg.features} file(s) under {data_dir}; "
            f"expected {_EXPECTED[cfg.features]}"
        )
    # The feature dimension is needed up front: read it from one file (they are small).
    first = next(iter(files.values()))
    arrays = read_arrays(first, _EXPECTED[cfg.features])
    dim = int(np.shape(find_pairs(arrays, _PAIRS, first, _EXPECTED[cfg.features])[0][0])[1])
    return Source(
        name="office-caltech10",
        domains={d: functools.partial(read_domain, p, cfg.features, dim) for d, p in files.items()},
        num_classes=10,
        input_shape=(dim,),
        kind="vector",
        class_names=list(CLASS_NAMES),
        default_target=DEFAULT_TARGET if DEFAULT_TARGET in files else next(iter(files)),
    )
