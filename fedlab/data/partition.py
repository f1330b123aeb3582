"""Split one domain's rows among several clients: IID, or label-skewed with a Dirichlet prior.

The Dirichlet split is the standard one of Hsu et al. (2019) / Yurochkin et al. (2019): for
every class draw client proportions p ~ Dir(alpha) and cut that class's (shuffled) rows at
the cumulative proportions. Small alpha -> each client sees few classes; large alpha -> IID.
The proportions are exposed separately so a domain's test rows can be split with the SAME
skew as its training rows.
"""

from __future__ import annotations

import numpy as np

from fedlab.core.errors import DataError


def iid_split(n: int, parts: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle ``range(n)`` and cut it into ``parts`` near-equal, disjoint, sorted index arrays."""
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    perm = rng.permutation(n)
    return [np.sort(chunk).astype(np.int64) for chunk in np.array_split(perm, parts)]


def _cut_points(count: int, props: np.ndarray) -> np.ndarray:
    """Boundaries of each part inside one class of ``count`` rows (deterministic given props)."""
    cuts = np.floor(np.cumsum(props) * count + 1e-9).astype(np.int64)
    cuts[-1] = count
    return np.concatenate([[0], cuts])


def _part_sizes(counts: np.ndarray, proportions: np.ndarray) -> np.ndarray:
    sizes = np.zeros(proportions.shape[1], dtype=np.int64)
    for c, count in enumerate(counts):
        sizes += np.diff(_cut_points(int(count), proportions[c]))
    return sizes


def dirichlet_proportions(
    y: np.ndarray,
    parts: int,
    alpha: float,
    rng: np.random.Generator,
    min_size: int = 10,
    max_tries: int = 1000,
) -> np.ndarray:
    """Draw a (num_classes, parts) matrix of per-class client shares; re-draw until every part
    would receive at least ``min_size`` rows of ``y``."""
    y = np.asarray(y, dtype=np.int64)
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    if alpha <= 0:
        raise ValueError(f"dirichlet alpha must be > 0, got {alpha}")
    if len(y) < parts * min_size:
        raise DataError(
            f"cannot split {len(y)} rows into {parts} clients with at least {min_size} rows each; "
            "use fewer clients_per_domain or a smaller min_size"
        )
    counts = np.bincount(y, minlength=int(y.max()) + 1 if len(y) else 1)
    for _ in range(max_tries):
        props = rng.dirichlet(np.full(parts, alpha), size=len(counts))
        if _part_sizes(counts, props).min() >= min_size:
            return props
    raise DataError(
        f"no Dirichlet(alpha={alpha}) split of {len(y)} rows into {parts} clients gave every client "
        f">= {min_size} rows after {max_tries} draws; raise dirichlet_alpha or lower clients_per_domain"
    )


def split_by_proportions(
    y: np.ndarray, proportions: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """Cut each class's shuffled rows at the cumulative ``proportions[class]``; disjoint, sorted."""
    y = np.asarray(y, dtype=np.int64)
    parts = proportions.shape[1]
    out: list[list[np.ndarray]] = [[] for _ in range(parts)]
    for c in range(int(y.max()) + 1 if len(y) else 0):
        idx = rng.permutation(np.flatnonzero(y == c))
        if c >= len(proportions):
            raise ValueError(f"label {c} has no row in proportions of shape {proportions.shape}")
        cuts = _cut_points(len(idx), proportions[c])
        for j in range(parts):
            out[j].append(idx[cuts[j] : cuts[j + 1]])
    return [
        np.sort(np.concatenate(chunks)).astype(np.int64) if chunks else np.zeros(0, np.int64)
        for chunks in out
    ]


def dirichlet_label_split(
    y: np.ndarray,
    parts: int,
    alpha: float,
    rng: np.random.Generator,
    min_size: int = 10,
) -> list[np.ndarray]:
    """Label-skewed split of the rows of ``y`` into ``parts`` disjoint index arrays (each >= min_size)."""
    props = dirichlet_proportions(y, parts, alpha, rng, min_size=min_size)
    return split_by_proportions(y, props, rng)
