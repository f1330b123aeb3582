"""Input transforms for count-like feature vectors, fitted on the SOURCE clients' training rows.

Bag-of-words and visual-word histograms are heavy-tailed counts; an MLP trained on raw counts
is dominated by a few frequent features. ``federation.transform`` (``features`` federation):

- ``log1p``: x -> log(1 + x) (no parameters; counts must be ≥ 0);
- ``tfidf``: x -> x · idf, rows L2-normalised; idf_j = ln((1 + n) / (1 + df_j)) + 1 with df_j the
  number of SOURCE training rows where feature j is non-zero;
- ``zscore``: (x − mean) / std per feature, mean and std of the SOURCE training rows.

Fitting on the sources only (never the target pool or any test row) keeps the target unseen:
the target's rows are only transformed. The fit never pools rows: each source domain sends
aggregates of its own training rows (row count, exact per-feature sums and sums of squares,
non-zero counts: `fedlab.data.client_stats`) and the server combines them (`fit_from_stats`);
`fit_transform` on one matrix is the same computation with a single owner.
`TransformedFederation.prepare_for(target)` is what `fedlab.data.registry.prepare` calls, like
the tabular federation's preprocessing.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fedlab.core.errors import DataError
from fedlab.data.base import Domain, FederationData

TRANSFORMS = ("none", "log1p", "tfidf", "zscore")


@dataclasses.dataclass(frozen=True)
class FittedTransform:
    kind: str
    scale: np.ndarray | None = None  # idf (tfidf) or 1/std (zscore)
    shift: np.ndarray | None = None  # mean (zscore)

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "log1p":
            return np.log1p(x).astype(np.float32)
        if self.kind == "tfidf":
            assert self.scale is not None
            w = x * self.scale
            norm = np.linalg.norm(w, axis=1, keepdims=True)
            return (w / np.where(norm > 0, norm, 1.0)).astype(np.float32)
        if self.kind == "zscore":
            assert self.scale is not None and self.shift is not None
            return ((x - self.shift) * self.scale).astype(np.float32)
        return x.astype(np.float32)


def fit_transform(kind: str, x_source: np.ndarray) -> FittedTransform:
    """Fit `kind` on the source training rows `x_source` (N, D) of one owner."""
    return fit_from_stats(kind, [np.asarray(x_source, dtype=np.float64)])


def fit_from_stats(kind: str, owners: list[np.ndarray]) -> FittedTransform:
    """Fit `kind` from each owner's aggregates (`array_stats`), combined by the server."""
    from fedlab.data.client_stats import array_stats, combine

    if kind not in TRANSFORMS:
        raise DataError(f"features: transform {kind!r} unknown; expected one of {', '.join(TRANSFORMS)}")
    if kind == "none" or (kind == "log1p" and not owners):
        return FittedTransform(kind)
    stats = combine(array_stats(x) for x in owners)
    dims = sorted(stats.numeric)
    if kind in ("log1p", "tfidf"):
        lows = [stats.numeric[j].low for j in dims]
        if lows and min(lows) < 0:
            col = int(np.argmin(lows))
            raise DataError(
                f"features: transform {kind!r} needs non-negative counts; column {col} has {lows[col]}"
            )
    if kind == "tfidf":
        df = np.array([stats.categories[j]["nonzero"] for j in dims], dtype=np.float64)
        return FittedTransform(kind, scale=np.log((1 + float(stats.rows)) / (1 + df)) + 1.0)
    if kind == "zscore":
        std = np.array([stats.std(j) for j in dims])
        mean = np.array([stats.mean(j) for j in dims])
        return FittedTransform(kind, scale=1.0 / np.where(std > 0, std, 1.0), shift=mean)
    return FittedTransform(kind)


@dataclasses.dataclass
class TransformedFederation(FederationData):
    """A vector federation whose transform is fitted per target on the other domains' train rows."""

    transform: str = "none"

    def prepare_for(self, target: str) -> FederationData:
        if self.transform == "none":
            return self
        owners = [d.x_train for name, d in self.domains.items() if name != target]
        fitted = fit_from_stats(self.transform, owners)
        domains = {
            name: dataclasses.replace(d, x_train=fitted.apply(d.x_train), x_test=fitted.apply(d.x_test))
            for name, d in self.domains.items()
        }
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(FederationData)}
        return FederationData(**{**fields, "domains": domains})


def with_transform(fed: FederationData, transform: str) -> FederationData:
    if transform == "none":
        return fed
    fields = {f.name: getattr(fed, f.name) for f in dataclasses.fields(FederationData)}
    return TransformedFederation(**fields, transform=transform)


__all__ = [
    "TRANSFORMS",
    "Domain",
    "FittedTransform",
    "TransformedFederation",
    "fit_from_stats",
    "fit_transform",
    "with_transform",
]
