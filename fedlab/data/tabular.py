"""``tabular``: one CSV split into domains by a column (e.g. UCI Adult by race).

Why a two-step design: the feature encoding (scaling, one-hot categories) must be learnt
from the SOURCE clients' training rows only — fitting it on the target domain or on test
rows would leak them — and which domain is the target is only known at training time. So:

1. `load_federation` (via `tabular_source`) returns a `TabularFederation` whose ``x_*`` are
   the RAW rows (object arrays, columns ``feature_columns``), already split into domains and
   train/test like every other federation;
2. `TabularFederation.prepare_for(target)` (what ``registry.prepare`` and ``make_clients``
   call) fits the preprocessing — standardized numeric columns, one-hot categories (unknown
   -> zeros), sklearn's StandardScaler + OneHotEncoder layout — from AGGREGATES each source
   domain computes on its own training rows (`fedlab.data.client_stats`: counts, exact sums,
   sums of squares, category counts; optionally ε-DP, ``[federation.preprocess_dp]``), never
   from pooled rows; transforms every domain (target included) to float32 (N, D), and caches
   the result per target. The exact sums make the fit identical to a fit on the pooled rows.

Rules:

- ``csv`` is a path, relative to ``data_dir`` when not absolute. A header row is expected;
  the raw UCI Adult files (``adult.data``/``adult.test``, no header, 15 columns) get the
  standard Adult column names, and then empty settings default to domain ``race``, label
  ``income`` positive ``>50K``, protected ``sex:Male`` and ``race:White``.
- Values are stripped; ``?`` and empty cells are missing, and rows with a missing value in
  any used column are dropped. Label values lose a trailing ``.`` (adult.test writes ``>50K.``).
- The label is binarised: 1 where it equals ``positive_label``, else 0.
- The label and ``positive_label`` are compared as text (``1`` == ``"1"`` == ``1.0``).
- ``protected`` uses the audit schema's syntax (`audits.datasets.protected`):
  ``{ race = "Caucasian" }``, ``{ race = ["Caucasian", "Asian"] }``, ``["sex:Male",
  "race:Caucasian|Asian"]``; a bare ``"sex"`` only for a two-valued column (its most frequent
  value), a multi-valued column without a privileged value is a one-line error (Adult's
  default: sex=Male, race=White, given explicitly). Their raw values
  are kept per row in ``groups_train/test``. They stay model inputs unless listed in
  ``drop_columns`` (fairness-unaware baseline by default).
- The domain column itself is not a feature (it is constant within a domain).
- Domains with fewer than 50 rows are merged into one ``other`` domain; if that is still
  under 50 rows its rows are dropped (logged). Domains are ordered by size (largest first);
  the default target is the second largest.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audits.datasets.protected import as_text
from fedlab.config import FederationConfig
from fedlab.core.errors import DataError
from fedlab.core.tables import check_finite, check_two_classes, check_unique_header, no_complete_rows
from fedlab.data.base import Domain, FederationData, RawDomain, Source

log = logging.getLogger(__name__)

MIN_DOMAIN_ROWS = 50
OTHER = "other"
ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]
ADULT_DEFAULTS: dict[str, Any] = {
    "domain_column": "race",
    "label_column": "income",
    "positive_label": ">50K",
    "protected": ["sex:Male", "race:White"],
}


@dataclass
class TabularFederation(FederationData):
    """A tabular federation; raw rows until `prepare_for(target)` encodes them."""

    feature_columns: list[str] = field(default_factory=list)
    numeric_columns: list[str] = field(default_factory=list)
    categorical_columns: list[str] = field(default_factory=list)
    prepared_for: str = ""  # "" = raw rows; else the target the encoder was fitted without
    preprocessor: Any = None  # the fitted TabularPreprocessor (prepared only)
    preprocess_epsilon: float | None = None  # ε-DP noise on the owners' aggregates (None = exact)
    preprocess_clip: float = 1e6
    preprocess_seed: int = 0
    raw: TabularFederation | None = field(default=None, repr=False)
    _prepared: dict[str, TabularFederation] = field(default_factory=dict, repr=False, compare=False)

    def frame(self, x: np.ndarray) -> pd.DataFrame:
        """Raw object rows -> a typed DataFrame (numeric columns as float)."""
        df = pd.DataFrame(x, columns=self.feature_columns)
        for c in self.numeric_columns:
            df[c] = df[c].astype(np.float64)
        return df

    def prepare_for(self, target: str) -> TabularFederation:
        """Encoded copy for leave-``target``-out: encoder fitted on source TRAIN rows only."""
        if self.prepared_for:
            return self if target == self.prepared_for else self.raw.prepare_for(target)  # type: ignore[union-attr]
        if target not in self.domains:
            raise DataError(
                f"{self.name}: unknown target domain {target!r}; choose one of {', '.join(self.domains)}"
            )
        if target not in self._prepared:
            self._prepared[target] = self._encode(target)
        return self._prepared[target]

    def _encode(self, target: str) -> TabularFederation:
        """Fit the preprocessing from the source owners' aggregates (`fedlab.data.client_stats`)."""
        from fedlab.data.client_stats import add_laplace, client_stats, clip_frame, combine

        eps, clip = self.preprocess_epsilon, self.preprocess_clip
        stats = []
        for i, (name, d) in enumerate(self.domains.items()):
            if name == target:
                continue
            frame = self.frame(d.x_train)  # the owner's own rows, never leaving it
            if eps is not None:
                frame = clip_frame(frame, self.numeric_columns, clip)
            own = client_stats(frame, self.numeric_columns, self.categorical_columns)
            if eps is not None:
                own = add_laplace(own, eps, clip, np.random.default_rng([self.preprocess_seed, i]))
            stats.append(own)
        pre = TabularPreprocessor.from_stats(combine(stats), self.numeric_columns, self.categorical_columns)

        def enc(x: np.ndarray) -> np.ndarray:
            return pre.transform(self.frame(x))

        domains = {
            n: Domain(n, enc(d.x_train), d.y_train, enc(d.x_test), d.y_test, d.groups_train, d.groups_test)
            for n, d in self.domains.items()
        }
        dim = next(iter(domains.values())).x_train.shape[1]
        kw = {f.name: getattr(self, f.name) for f in fields(self) if f.init and f.name != "_prepared"}
        kw.update(domains=domains, input_shape=(dim,), prepared_for=target, preprocessor=pre, raw=self)
        return TabularFederation(**kw)


@dataclass
class TabularPreprocessor:
    """Standardized numeric columns, then one-hot categories: sklearn's StandardScaler +
    OneHotEncoder(handle_unknown="ignore") layout, fitted from combined aggregates."""

    numeric: list[str]
    categorical: list[str]
    mean: np.ndarray
    scale: np.ndarray
    categories: dict[str, list[str]]
    epsilon: float | None = None  # ε of the noise on the aggregates (None = exact)

    @classmethod
    def from_stats(cls, stats: Any, numeric: list[str], categorical: list[str]) -> TabularPreprocessor:
        """Mean and population std per numeric column (a ~0 std becomes 1, as sklearn does), and
        the sorted vocabulary of each categorical column."""
        mean = np.array([stats.mean(c) for c in numeric], dtype=np.float64)
        scale = np.array([stats.std(c) for c in numeric], dtype=np.float64)
        scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
        cats = {c: stats.vocabulary(c) for c in categorical}
        return cls(list(numeric), list(categorical), mean, scale, cats, stats.epsilon)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows -> float32 (N, D); a category never seen by the sources is all zeros."""
        num = frame[self.numeric].to_numpy(dtype=np.float64) if self.numeric else np.zeros((len(frame), 0))
        blocks = [(num - self.mean) / self.scale]
        for c in self.categorical:
            index = {v: j for j, v in enumerate(self.categories[c])}
            codes = np.array([index.get(v, -1) for v in frame[c].astype(str)], dtype=np.int64)
            onehot = np.zeros((len(frame), len(index)), dtype=np.float64)
            rows = np.flatnonzero(codes >= 0)
            onehot[rows, codes[rows]] = 1.0
            blocks.append(onehot)
        return np.asarray(np.hstack(blocks), dtype=np.float32)


# -- reading ------------------------------------------------------------------------------


def _settings(cfg: FederationConfig, adult: bool) -> dict[str, Any]:
    s = {
        "domain_column": cfg.domain_column,
        "label_column": cfg.label_column,
        "positive_label": cfg.positive_label,
        "protected": cfg.protected,
    }
    if adult:
        s = {k: v if v else ADULT_DEFAULTS[k] for k, v in s.items()}
    for key in ("domain_column", "label_column", "positive_label"):
        if s[key] is None or s[key] == "":
            raise DataError(f"tabular: federation.{key} is empty; set it to a column/value of {cfg.csv}")
    return s


def read_table(path: Path, cfg: FederationConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The CSV as strings-stripped DataFrame, and the effective settings (Adult defaults applied)."""
    if not path.is_file():
        raise DataError(
            f"tabular: CSV file {path} not found; expected a comma-separated file with a header row"
        )
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
            skip = 1 if first.startswith("|") else 0  # adult.test starts with "|1x3 Cross validator"
            if skip:
                first = fh.readline()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    head = [c.strip() for c in first.rstrip("\r\n").split(",")]
    wanted = [c for c in (cfg.domain_column, cfg.label_column) if c]
    adult = path.name.lower().startswith("adult") and len(head) == len(ADULT_COLUMNS) and "age" not in head
    has_header = not adult
    if wanted and all(c in head for c in wanted):
        has_header, adult = True, False
    if has_header:
        check_unique_header(path, skip=skip)
    try:
        df = pd.read_csv(
            path,
            skiprows=skip,
            header=0 if has_header else None,
            names=None if has_header else ADULT_COLUMNS,
            skipinitialspace=True,
            na_values=["?"],
            keep_default_na=True,
        )
    except Exception as exc:
        raise DataError(f"{path}: cannot parse as CSV ({type(exc).__name__}: {exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].str.strip().replace("", np.nan)
    check_finite(df, str(path))
    return df, _settings(cfg, adult)


def _privileged(df: pd.DataFrame, specs: Any, path: Path) -> dict[str, str | list[str]]:
    """`federation.protected` in the audit schema's syntax, checked against the table: one
    privileged value (text) or several (list) per column; one-line errors otherwise."""
    from audits.datasets.protected import normalize, resolve_mapping

    protected = normalize(specs, "federation.protected")
    for col in protected:
        if col not in df.columns:
            raise DataError(
                f"{path}: protected column {col!r} not found; columns are {', '.join(df.columns)}"
            )
    return resolve_mapping(protected, df, str(path))


def _group_small(domains: pd.Series, path: Path, column: str) -> pd.Series:
    """Domains under MIN_DOMAIN_ROWS rows -> OTHER; a too-small OTHER is dropped (NaN)."""
    counts = domains.value_counts()
    small = counts.index[counts < MIN_DOMAIN_ROWS]
    if len(small) == 0:
        return domains
    merged = domains.where(~domains.isin(small), OTHER)
    if (merged == OTHER).sum() < MIN_DOMAIN_ROWS:
        n_other = int((merged == OTHER).sum())
        log.warning("%s: dropping %d rows of %d small %r domain(s)", path, n_other, len(small), column)
        merged = merged.where(merged != OTHER)
    return merged


def tabular_source(cfg: FederationConfig) -> Source:
    if not cfg.csv:
        raise DataError("tabular: federation.csv is empty; expected the path of a CSV file")
    path = Path(cfg.csv).expanduser()
    if not path.is_absolute() and cfg.data_dir:
        path = Path(cfg.data_dir).expanduser() / path
    df, s = read_table(path, cfg)
    if df.empty:
        raise no_complete_rows(df, str(path))
    dom_col, lab_col = s["domain_column"], s["label_column"]
    for role, col in (
        ("domain_column", dom_col),
        ("label_column", lab_col),
        *(("drop_columns", c) for c in cfg.drop_columns),
    ):
        if col not in df.columns:
            raise DataError(f"{path}: {role} {col!r} not found; columns are {', '.join(df.columns)}")
    protected = _privileged(df, s["protected"], path)
    df = df.drop(columns=[c for c in cfg.drop_columns if c not in (dom_col, lab_col, *protected)])
    n_before, df_before = len(df), df
    df = df.dropna().reset_index(drop=True)
    if df.empty:
        raise no_complete_rows(df_before, str(path))
    if len(df) < n_before:
        log.info("%s: dropped %d of %d rows with missing values", path, n_before - len(df), n_before)
    label = df[lab_col].map(as_text).str.rstrip(".")
    check_two_classes(label, str(path), lab_col)
    positive = as_text(s["positive_label"]).rstrip(".")
    values = sorted(set(label))
    if positive not in values:
        raise DataError(
            f"{path}: positive_label {positive!r} not in column {lab_col!r}; "
            f"values are {', '.join(values[:10])}"
        )
    y = (label == positive).to_numpy(np.int64)
    negative = [v for v in values if v != positive]
    class_names = [negative[0] if len(negative) == 1 else f"not {positive}", positive]

    domain = _group_small(df[dom_col].astype(str), path, dom_col)
    keep = domain.notna().to_numpy()
    df, y, domain = df[keep].reset_index(drop=True), y[keep], domain[keep].reset_index(drop=True)
    order = list(domain.value_counts().index)  # largest first; ties keep first-seen order
    if len(order) < 2:
        raise DataError(
            f"{path}: column {dom_col!r} gives {len(order)} domain(s) with >= {MIN_DOMAIN_ROWS} rows; need 2"
        )

    features = [c for c in df.columns if c not in (dom_col, lab_col) and c not in cfg.drop_columns]
    if not features:
        raise DataError(f"{path}: no feature columns left besides {dom_col!r} and {lab_col!r}")
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(df[c])]
    categorical = [c for c in features if c not in numeric]
    x_all = df[features].astype(object).to_numpy()
    groups_all = df[list(protected)].reset_index(drop=True) if protected else None

    def loader(name: str) -> RawDomain:
        rows = np.flatnonzero((domain == name).to_numpy())
        groups = None if groups_all is None else groups_all.iloc[rows].reset_index(drop=True)
        return RawDomain(x=x_all[rows], y=y[rows], groups=groups)

    def finish(fed: FederationData) -> TabularFederation:
        kw = {f.name: getattr(fed, f.name) for f in fields(fed)}
        return TabularFederation(
            **kw,
            feature_columns=features,
            numeric_columns=numeric,
            categorical_columns=categorical,
            preprocess_epsilon=cfg.preprocess_dp.epsilon,
            preprocess_clip=cfg.preprocess_dp.clip,
            preprocess_seed=cfg.split_seed,
        )

    return Source(
        name="tabular",
        domains={name: functools.partial(loader, name) for name in order},
        num_classes=2,
        input_shape=(len(features),),
        kind="vector",
        class_names=class_names,
        default_target=order[1],
        protected=protected,
        finish=finish,
    )
