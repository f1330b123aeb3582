"""Load a federation by name, and turn it into per-client partitions.

Every loader returns a `Source`: the domains it found (loaded lazily, so a ``domains``
subset never reads the other files) plus federation metadata. This module then applies
what is common to all federations, in a fixed order, with seeds derived from
``(seed, domain name)`` so one domain's rows never depend on which other domains are used:

1. ``cfg.domains`` subset (unknown name -> `DataError` listing the valid ones);
2. ``cfg.max_per_domain``: seeded, stratified subsample (before any expensive per-sample
   transform such as resizing images, which is why loaders hand back a ``transform``);
3. the test split: the dataset's OFFICIAL test rows when the loader found them
   (``RawDomain.x_test``; capped by ``cfg.max_test_per_domain``), else a stratified split with
   ``cfg.test_fraction``.

Steps 2 and 3 are seeded by ``cfg.split_seed`` (default 0), NOT by the run seed: every run of
every strategy and seed scores the target on the same documented test rows, which training,
voting and fine-tuning never see (the target's training rows are the unlabeled pool).

`make_clients` then holds one domain out as the target and splits every other domain into
``cfg.clients_per_domain`` clients (IID or Dirichlet label skew). Tabular federations (and
``features`` with a ``transform``) need one more, target-dependent step — fitting the
preprocessor on the source clients' training rows only — done by `prepare`, which
`make_clients` calls for you; the server calls ``prepare(fed, target).domains[target]`` to get
the target rows in the same feature space.

Results of `load_federation` are cached per process (simulated clients each call it), so
treat the returned arrays as read-only.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fedlab.config import FederationConfig
from fedlab.core.errors import DataError
from fedlab.data.base import Domain, FederationData, RawDomain, Source
from fedlab.data.partition import dirichlet_proportions, iid_split, split_by_proportions


@dataclass
class ClientPartition:
    """One simulated client: a slice of one source domain's train and test rows."""

    client_id: int
    domain: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    groups_train: pd.DataFrame | None = None
    groups_test: pd.DataFrame | None = None

    @property
    def num_train(self) -> int:
        """Training rows the client holds."""
        return len(self.y_train)


def domain_rng(seed: int, domain: str, purpose: int) -> np.random.Generator:
    """A generator that depends only on (seed, domain, purpose), never on the other domains."""
    return np.random.default_rng([seed % (2**32), zlib.crc32(domain.encode()), purpose])


def stratified_subsample(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` rows of ``y`` keeping class proportions (largest-remainder rounding)."""
    y = np.asarray(y)
    if n >= len(y):
        return np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * (n / len(y))
    take = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: n - int(take.sum())]] += 1
    picked = [
        rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c, k in zip(classes, take, strict=True)
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def stratified_split(
    y: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) sorted index arrays; each class contributes round(test_fraction * count) test rows.

    Classes with a single row stay in train; at least one row ends up on each side when n >= 2."""
    y = np.asarray(y)
    test: list[np.ndarray] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = round(test_fraction * len(idx)) if len(idx) > 1 else 0
        k = min(k, len(idx) - 1) if len(idx) > 1 else 0
        test.append(idx[:k])
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    if len(test_idx) == 0 and len(y) >= 2:
        test_idx = np.array([int(rng.integers(len(y)))])
    mask = np.zeros(len(y), dtype=bool)
    mask[test_idx] = True
    return np.flatnonzero(~mask).astype(np.int64), np.flatnonzero(mask).astype(np.int64)


def _rows(groups: pd.DataFrame | None, idx: np.ndarray) -> pd.DataFrame | None:
    return None if groups is None else groups.iloc[idx].reset_index(drop=True)


def _source_for(cfg: FederationConfig) -> Source:
    # Imported on first use: a federation's readers (torch, scipy, h5py, sklearn) load only when asked for.
    if cfg.name == "digits":
        from fedlab.data.digits import digits_source

        return digits_source(cfg)
    if cfg.name == "digit-five":
        from fedlab.data.digit_five import digit_five_source

        return digit_five_source(cfg)
    if cfg.name == "office-caltech10":
        from fedlab.data.office_caltech import office_caltech_source

        return office_caltech_source(cfg)
    if cfg.name == "features":
        from fedlab.data.features import features_source

        return features_source(cfg)
    if cfg.name == "tabular":
        from fedlab.data.tabular import tabular_source

        return tabular_source(cfg)
    raise DataError(f"unknown federation {cfg.name!r}")


def _build(cfg: FederationConfig) -> FederationData:
    src = _source_for(cfg)
    names = list(src.domains)
    if cfg.domains:
        unknown = [d for d in cfg.domains if d not in src.domains]
        if unknown:
            raise DataError(
                f"{cfg.name}: unknown domain {unknown[0]!r}; valid domains are {', '.join(names)}"
            )
        names = list(dict.fromkeys(cfg.domains))
    if len(names) < 2:
        raise DataError(f"{cfg.name}: need at least 2 domains (one target, one source), got {names}")
    domains: dict[str, Domain] = {}
    for name in names:
        domains[name] = _split_domain(cfg, name, src.domains[name]())
    default_target = src.default_target if src.default_target in domains else names[0]
    fed = FederationData(
        name=src.name,
        domains=domains,
        num_classes=src.num_classes,
        input_shape=tuple(src.input_shape),
        kind=src.kind,
        class_names=list(src.class_names),
        default_target=default_target,
        protected=dict(src.protected),
    )
    return src.finish(fed) if src.finish is not None else fed


def _split_domain(cfg: FederationConfig, name: str, raw: RawDomain) -> Domain:
    """Subsample, transform and split one domain (seeded by ``cfg.split_seed`` only)."""
    x, y, groups = raw.x, np.asarray(raw.y, dtype=np.int64), raw.groups
    if cfg.max_per_domain and len(y) > cfg.max_per_domain:
        keep = stratified_subsample(y, cfg.max_per_domain, domain_rng(cfg.split_seed, name, 1))
        x, y, groups = x[keep], y[keep], _rows(groups, keep)
    if raw.transform is not None:
        x = raw.transform(x)
    if raw.x_test is not None and raw.y_test is not None:
        xt, yt, gt = raw.x_test, np.asarray(raw.y_test, dtype=np.int64), raw.groups_test
        if cfg.max_test_per_domain and len(yt) > cfg.max_test_per_domain:
            keep = stratified_subsample(yt, cfg.max_test_per_domain, domain_rng(cfg.split_seed, name, 4))
            xt, yt, gt = xt[keep], yt[keep], _rows(gt, keep)
        if raw.transform is not None:
            xt = raw.transform(xt)
        if len(y) < 1 or len(yt) < 1:
            raise DataError(
                f"{cfg.name}: domain {name!r} has {len(y)} train / {len(yt)} test rows; need both"
            )
        return Domain(name, x, y, xt, yt, groups, gt)
    if len(y) < 2:
        raise DataError(f"{cfg.name}: domain {name!r} has {len(y)} rows; need at least 2")
    tr, te = stratified_split(y, cfg.test_fraction, domain_rng(cfg.split_seed, name, 2))
    return Domain(name, x[tr], y[tr], x[te], y[te], _rows(groups, tr), _rows(groups, te))


@functools.lru_cache(maxsize=8)
def _load_cached(cfg_json: str) -> FederationData:
    return _build(FederationConfig.model_validate_json(cfg_json))


def load_federation(cfg: FederationConfig, seed: int = 0) -> FederationData:
    """Load (or reuse this process's cached copy of) the federation ``cfg`` describes.

    ``seed`` (the run seed) does not change the data: subsample and split follow
    ``cfg.split_seed``; it is accepted so callers need not know that."""
    del seed
    return _load_cached(cfg.model_dump_json())


def clear_cache() -> None:
    """Forget cached federations (tests, or after files on disk changed)."""
    _load_cached.cache_clear()


def resolve_target(fed: FederationData, target: str) -> str:
    """``""`` -> the federation's default target; unknown name -> `DataError` listing the choices."""
    name = target or fed.default_target
    if name not in fed.domains:
        raise DataError(
            f"{fed.name}: unknown target domain {name!r}; choose one of {', '.join(fed.domain_names)}"
        )
    return name


def prepare(fed: FederationData, target: str) -> FederationData:
    """The federation in model-ready form for leave-``target``-out training.

    Identity for image federations and untransformed vector ones. Tabular federations (and
    ``features`` with a ``transform``) fit their preprocessor on the source domains' TRAINING
    rows only (never the target, never test rows) and transform all domains with it."""
    target = resolve_target(fed, target)
    prepare_for = getattr(fed, "prepare_for", None)  # TabularFederation (avoids importing sklearn)
    return prepare_for(target) if prepare_for is not None else fed


def _client_split(
    y_train: np.ndarray, y_test: np.ndarray, parts: int, cfg: FederationConfig, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if parts == 1:
        return [np.arange(len(y_train))], [np.arange(len(y_test))]
    if cfg.split == "iid":
        return iid_split(len(y_train), parts, rng), iid_split(len(y_test), parts, rng)
    min_size = max(1, min(10, len(y_train) // (2 * parts)))
    props = dirichlet_proportions(y_train, parts, cfg.dirichlet_alpha, rng, min_size=min_size)
    train = split_by_proportions(y_train, props, rng)
    test = split_by_proportions(y_test, props, rng) if len(y_test) else [np.zeros(0, np.int64)] * parts
    # Same skew on test rows, but never leave a client without any test row to evaluate on.
    for j in range(parts):
        if len(test[j]) == 0 and len(y_test) >= parts:
            donor = int(np.argmax([len(t) for t in test]))
            test[j], test[donor] = test[donor][-1:], test[donor][:-1]
    return train, test


def make_clients(fed: FederationData, target: str, cfg: FederationConfig, seed: int) -> list[ClientPartition]:
    """Every non-target domain becomes ``cfg.clients_per_domain`` clients (ids 0.., domain order).

    ``target=""`` means the federation's default target."""
    target = resolve_target(fed, target)
    ready = prepare(fed, target)
    clients: list[ClientPartition] = []
    for name, dom in ready.domains.items():
        if name == target:
            continue
        rng = domain_rng(seed, name, 3)
        train_parts, test_parts = _client_split(dom.y_train, dom.y_test, cfg.clients_per_domain, cfg, rng)
        for tr, te in zip(train_parts, test_parts, strict=True):
            clients.append(
                ClientPartition(
                    client_id=len(clients),
                    domain=name,
                    x_train=dom.x_train[tr],
                    y_train=dom.y_train[tr],
                    x_test=dom.x_test[te],
                    y_test=dom.y_test[te],
                    groups_train=_rows(dom.groups_train, tr),
                    groups_test=_rows(dom.groups_test, te),
                )
            )
    return clients
