"""The in-memory form every domain federation is loaded into, and what loaders hand over.

A federation is a set of named domains; each domain has a train and a test split of
inputs (images as float32 NCHW, feature vectors/tables as float32 (N, D)) and int64
labels. The server holds one domain as the unlabeled target (leave-one-domain-out);
the others become clients (one or more per domain).

Loaders (`fedlab.data.digits`, `tabular`, ...) return a `Source` of `RawDomain`s, which
`fedlab.data.registry` subsamples and splits into a `FederationData`. These types live here,
not in the registry, so loaders never import the registry that calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd


@dataclass
class Domain:
    """One data domain, model-ready: train and test arrays (+ protected-attribute values per row for tabular
    data)."""
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    # Protected attributes per row (tabular federations), aligned with x_*; else None.
    groups_train: pd.DataFrame | None = None
    groups_test: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        assert len(self.x_train) == len(self.y_train), self.name
        assert len(self.x_test) == len(self.y_test), self.name

    @property
    def size(self) -> int:
        """Rows in the domain (train + test)."""
        return len(self.y_train) + len(self.y_test)


@dataclass
class FederationData:
    """A loaded federation: its domains, number of classes, input kind (image / vector) and protected
    attributes."""
    name: str
    domains: dict[str, Domain]  # insertion order is the canonical domain order
    num_classes: int
    input_shape: tuple[int, ...]  # per-sample shape, e.g. (3, 28, 28) or (800,)
    kind: Literal["image", "vector"]
    class_names: list[str] = field(default_factory=list)
    default_target: str = ""
    # Protected attribute names and their privileged values (tabular), for fairness.
    protected: dict[str, str] = field(default_factory=dict)

    @property
    def domain_names(self) -> list[str]:
        """Domain names in the federation's order (which fixes the clients' ids)."""
        return list(self.domains)


@dataclass
class RawDomain:
    """All rows of one domain as a loader found them (before subsampling and splitting)."""

    x: np.ndarray
    y: np.ndarray
    groups: pd.DataFrame | None = None
    # Applied to x[rows] after subsampling (e.g. resize to 28x28x3), so it only pays for kept rows.
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    # The dataset's official test split (then x, y are its training rows); None = split x, y.
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    groups_test: pd.DataFrame | None = None


@dataclass
class Source:
    """What a loader found: lazily loadable domains plus the federation's metadata."""

    name: str
    domains: dict[str, Callable[[], RawDomain]]
    num_classes: int
    input_shape: tuple[int, ...]
    kind: Literal["image", "vector"]
    class_names: list[str] = field(default_factory=list)
    default_target: str = ""
    protected: dict[str, str] = field(default_factory=dict)
    # Turns the loaded FederationData into the federation's own type (tabular keeps its schema).
    finish: Callable[[FederationData], FederationData] | None = None
