"""Local anonymization of every client's partition of a tabular federation (``--anonymize "k=10"``).

Each client generalizes its OWN raw training rows with `audits.anonymity` (k-anonymity, optionally
l-diversity / t-closeness of the label) before training, and applies the same recoding
(`AnonymizationResult.transform`) to its evaluation split; rows the algorithm suppresses are not
trained on. One client's anonymization depends on its own rows only, and the server only ever
receives model weights, never rows (raw or generalized).

Encoding generalized rows consistently. Clients choose their own generalization (client A may
publish age as ``[20, 40[``, client B as ``[30, 35[`` and the target, which is not anonymized,
keeps raw values), yet all of them must map into ONE feature space. fedlab therefore replaces the
per-value one-hot/scaling of `fedlab.data.tabular` with a hierarchy-aware encoder
(`GeneralizedEncoder`) whose layout comes from the public generalization hierarchies:

* a categorical QI becomes a distribution over the leaves of its hierarchy: a raw value is
  one-hot, a generalized node spreads weight 1/m over its m leaves (``"*"`` is uniform). A
  model thus sees "one of these values" instead of an unrelated new category, and raw target rows
  land on the same columns as generalized client rows;
* a numeric QI (age) becomes the midpoint of its interval (the midpoint of the node's leaves, or
  of a Mondrian ``[lo, hi]`` range), then is standardized like any numeric column;
* other columns are left untouched by anonymization and encoded as before (standardized
  numerics, one-hot categories fitted on the source clients' rows).

The scaler and non-QI categories are fitted from aggregates of each client's *anonymized*
training table (`fedlab.data.client_stats`), combined by the server; rows are never pooled.

What is anonymized, as configured. With ``[federation] schema = "schema.toml"`` (the same schema
file `fedlab audit` reads, `audits.datasets.schema`) the quasi-identifiers, the sensitive attribute
(for ℓ-diversity / t-closeness) and the generalization hierarchies come from that file;
``anonymize.qis`` still overrides the QIs. Without a schema: the audits Adult QIs present as
features, the label as the sensitive attribute, hierarchies from the Adult schema for Adult's
columns, nested interval hierarchies (widths 5/10/20/40) for other numeric QIs and a flat value ->
``*`` hierarchy for other categorical ones. Each client's report says which QIs and sensitive
attribute were used and what it achieved: k, ℓ and t of its released table, rows suppressed and
the information loss (NCP with suppression counted as full loss).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from fedlab.config import SimulationConfig, parse_anonymize_spec
from fedlab.core.errors import ConfigError, FedlabError
from fedlab.data.base import Domain, FederationData
from fedlab.data.registry import ClientPartition, make_clients, resolve_target

LABEL = "__label__"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE]-?\d+)?")


@dataclass
class AnonymizedClient:
    """One client's anonymization: its generalized tables (kept locally) and what it cost."""

    client_id: int
    domain: str
    table: pd.DataFrame  # generalized training rows that were kept (QIs as strings, + LABEL)
    test_table: pd.DataFrame  # the evaluation split under the same recoding
    report: dict[str, Any]


@dataclass
class AnonymizedFederation:
    ready: FederationData  # encoded with the GeneralizedEncoder (target rows raw, then encoded)
    clients: list[ClientPartition]  # encoded, anonymized partitions (same ids as without anonymization)
    anonymized: list[AnonymizedClient]
    qis: list[str]


def default_qis(feature_columns: list[str]) -> list[str]:
    from audits.datasets.schema import builtin_schema

    return [q for q in builtin_schema("adult").quasi_identifiers if q in feature_columns]


def build_hierarchies(raw: Any, qis: list[str], schema: Any = None) -> dict[str, Any]:
    """One public hierarchy per QI (see module docstring): the user's schema first."""
    from audits.anonymity.hierarchy import TOP, Hierarchy, value_key
    from audits.datasets.schema import builtin_schema

    values = {q: _all_values(raw, q) for q in qis}
    out: dict[str, Any] = {}
    if schema is not None:
        out.update(_schema_hierarchies(raw, [q for q in qis if q in schema.hierarchies], schema, values))
    schema = builtin_schema("adult")
    for q in qis:
        if q in out:
            continue
        spec = schema.hierarchies.get(q)
        if spec is not None and spec.file is not None:
            h = Hierarchy.from_csv(schema.resolve(spec.file), q)
            known = set(h.leaves)
            unknown = sorted({value_key(v) for v in values[q]} - known)
            if not unknown:
                out[q] = h
                continue
        if q in raw.numeric_columns:
            out[q] = Hierarchy.from_widths(q, values[q], (5, 10, 20, 40))
        else:
            leaves = sorted({str(v) for v in values[q]})
            out[q] = Hierarchy(q, [[v, TOP] for v in leaves], source="flat")
    return out


def _schema_hierarchies(
    raw: Any, qis: list[str], schema: Any, values: dict[str, list[Any]]
) -> dict[str, Any]:
    """The schema's hierarchies for `qis`, checked to cover every value of the federation."""
    from audits.anonymity.hierarchy import value_key
    from audits.datasets.load import build_hierarchies as schema_hierarchies

    frame = pd.DataFrame({q: pd.Series(values[q]) for q in qis})
    for q in qis:
        if q in raw.numeric_columns:
            frame[q] = frame[q].astype(np.float64)
    sub = schema.model_copy(update={"hierarchies": {q: schema.hierarchies[q] for q in qis}})
    sub._base_dir = schema.base_dir
    out = schema_hierarchies(frame, sub, repair=True)
    for q, h in out.items():
        unknown = sorted({value_key(v) for v in values[q]} - set(h.leaves))
        if unknown:
            raise ConfigError(
                f"{schema.name}: hierarchy of {q!r} has no leaf {unknown[0]!r} "
                f"({len(unknown)} value(s) of the federation missing); add them to the hierarchy"
            )
    return out


def _all_values(raw: Any, column: str) -> list[Any]:
    j = raw.feature_columns.index(column)
    vals: set[Any] = set()
    for d in raw.domains.values():
        vals.update(d.x_train[:, j].tolist())
        vals.update(d.x_test[:, j].tolist())
    return sorted(vals, key=str)


class GeneralizedEncoder:
    """Raw or generalized rows -> float32 features in one layout (see module docstring)."""

    def __init__(self, raw: Any, qis: list[str], hierarchies: dict[str, Any]) -> None:
        self.columns = list(raw.feature_columns)
        self.numeric = set(raw.numeric_columns)
        self.qis = set(qis)
        self.hier = hierarchies
        self.mean: dict[str, float] = {}
        self.std: dict[str, float] = {}
        self.categories: dict[str, list[str]] = {}
        self._leaf_dist: dict[str, dict[str, np.ndarray]] = {}
        self._midpoint: dict[str, dict[str, float]] = {}
        for q in qis:
            h = hierarchies[q]
            if q in self.numeric:
                self._midpoint[q] = _midpoints(h)
            else:
                self._leaf_dist[q] = _leaf_distributions(h)

    def fit(self, tables: list[pd.DataFrame]) -> GeneralizedEncoder:
        """Fit from each client's aggregates of its released table, combined (never pooled rows)."""
        from fedlab.data.client_stats import client_stats, combine

        numeric = [c for c in self.columns if c in self.numeric]
        categorical = [c for c in self.columns if c not in self.numeric and c not in self.qis]
        own = []
        for table in tables:
            values = pd.DataFrame({c: self._numeric(c, table[c]) for c in numeric}, index=table.index)
            own.append(client_stats(pd.concat([values, table[categorical]], axis=1), numeric, categorical))
        stats = combine(own)
        for c in numeric:
            self.mean[c], self.std[c] = stats.mean(c), stats.std(c, ddof=1) or 1.0
        for c in categorical:
            self.categories[c] = stats.vocabulary(c)
        return self

    def transform(self, table: pd.DataFrame) -> np.ndarray:
        blocks = []
        for c in self.columns:
            if c in self.numeric:
                blocks.append(((self._numeric(c, table[c]) - self.mean[c]) / self.std[c])[:, None])
            elif c in self.qis:
                dist = self._leaf_dist[c]
                width = len(next(iter(dist.values())))
                zero = np.zeros(width)
                blocks.append(np.stack([dist.get(str(v), zero) for v in table[c]]))
            else:
                cats = {v: i for i, v in enumerate(self.categories[c])}
                onehot = np.zeros((len(table), len(cats)))
                for r, v in enumerate(table[c].astype(str)):
                    if v in cats:
                        onehot[r, cats[v]] = 1.0
                blocks.append(onehot)
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def _numeric(self, column: str, series: pd.Series) -> np.ndarray:
        if column not in self.qis:
            return series.astype(np.float64).to_numpy()
        mid = self._midpoint[column]
        return np.array([_as_number(v, mid) for v in series], dtype=np.float64)


def _midpoints(h: Any) -> dict[str, float]:
    leaves = np.array([float(v) for v in h.leaves], dtype=np.float64)
    out: dict[str, float] = {}
    for j in range(h.height + 1):
        for node, label in enumerate(h.labels[j]):
            under = leaves[h.codes[:, j] == node]
            out.setdefault(str(label), float((under.min() + under.max()) / 2))
    return out


def _as_number(value: Any, midpoints: dict[str, float]) -> float:
    text = str(value)
    if text in midpoints:
        return midpoints[text]
    try:
        return float(text)
    except ValueError:
        nums = [float(n) for n in _NUMBER.findall(text)]
        if not nums:
            raise FedlabError(f"anonymize: cannot read a number from generalized value {text!r}") from None
        return float((min(nums) + max(nums)) / 2)


def _leaf_distributions(h: Any) -> dict[str, np.ndarray]:
    """Label -> uniform distribution over the leaves under it (lowest level wins on a clash)."""
    n = len(h.leaves)
    out: dict[str, np.ndarray] = {}
    for j in range(h.height + 1):
        for node, label in enumerate(h.labels[j]):
            if str(label) in out:
                continue
            mask = (h.codes[:, j] == node).astype(np.float64)
            out[str(label)] = mask / mask.sum()
    assert all(len(v) == n for v in out.values())
    return out


def load_federation_schema(cfg: SimulationConfig) -> Any:
    """The audit schema named by ``federation.schema`` (None when unset)."""
    if not cfg.federation.schema_file:
        return None
    from audits.datasets.schema import load_schema

    return load_schema(cfg.federation.schema_file)


def _sensitive(raw: Any, schema: Any, qis: list[str], cfg: SimulationConfig) -> str:
    """The column ℓ / t protect: the schema's sensitive attribute, else the label."""
    name = schema.sensitive if schema is not None else None
    if not name or name == cfg.federation.label_column:
        return LABEL
    if name not in raw.feature_columns or name in qis:
        raise ConfigError(
            f"{cfg.federation.schema_file}: sensitive attribute {name!r} is not a non-QI feature column; "
            f"features are {', '.join(raw.feature_columns)}"
        )
    return name


def achieved(table: pd.DataFrame, qis: list[str], sensitive: str) -> dict[str, float]:
    """k, distinct ℓ and t (equal-distance EMD) the released table has (`audits.anonymity.verify`)."""
    from audits.anonymity.verify import k_anonymity, l_diversity, t_closeness

    if table.empty:
        return {"k": 0.0, "l": 0.0, "t": float("nan")}
    frame = table.astype({q: str for q in qis})
    return {
        "k": float(k_anonymity(frame, qis)),
        "l": float(l_diversity(frame, qis, sensitive)),
        "t": float(t_closeness(frame, qis, sensitive, distance="equal")),
    }


def _privacy_model(spec: str) -> Any:
    from audits.anonymity import PrivacyModel

    parts = parse_anonymize_spec(spec)
    return PrivacyModel(k=int(parts.get("k", 1)), l=parts.get("l"), t=parts.get("t"))  # type: ignore[arg-type]


def anonymize_federation(raw: Any, target: str, cfg: SimulationConfig) -> AnonymizedFederation:
    """Every source client anonymizes its own partition; one encoder for all (module docstring)."""
    from audits.anonymity import anonymize

    if getattr(raw, "feature_columns", None) is None or getattr(raw, "prepared_for", "x"):
        raise ConfigError(
            f"anonymize: needs a tabular federation (got {cfg.federation.name!r}); "
            "set federation.name = 'tabular' or drop --anonymize"
        )
    target = resolve_target(raw, target)
    acfg = cfg.anonymize
    if cfg.federation.preprocess_dp.epsilon is not None:
        raise ConfigError(
            "federation.preprocess_dp: not available with --anonymize (the anonymized clients' encoder is "
            "fitted from exact aggregates of their released, already anonymized tables); drop one of them"
        )
    schema = load_federation_schema(cfg)
    qis = acfg.qis or (list(schema.quasi_identifiers) if schema else default_qis(raw.feature_columns))
    qis = [q for q in qis if q != cfg.federation.domain_column]
    missing = [q for q in qis if q not in raw.feature_columns]
    if missing or not qis:
        where = f" (from {cfg.federation.schema_file})" if schema and not acfg.qis else ""
        raise ConfigError(
            f"anonymize: quasi-identifier {missing[0] if missing else '(none)'!r}{where} is not a feature "
            f"column; features are {', '.join(raw.feature_columns)}"
        )
    sensitive = _sensitive(raw, schema, qis, cfg)
    model = _privacy_model(acfg.spec)
    hierarchies = build_hierarchies(raw, qis, schema)
    plain = FederationData(**{f.name: getattr(raw, f.name) for f in fields(FederationData)})
    raw_clients = make_clients(plain, target, cfg.federation, cfg.seed)  # same split, raw rows
    done: list[AnonymizedClient] = []
    for part in raw_clients:
        train = raw.frame(part.x_train)
        train[LABEL] = part.y_train
        try:
            result = anonymize(
                train,
                qis,
                hierarchies,
                model,
                algorithm=acfg.algorithm,
                suppression_limit=acfg.suppression_limit,
                sensitive=sensitive if model.needs_sensitive else None,
            )
        except FedlabError as exc:
            raise type(exc)(f"client {part.client_id} ({part.domain}): {exc}") from exc
        if result.table.empty:
            raise ConfigError(
                f"anonymize: client {part.client_id} ({part.domain}) keeps no rows under {acfg.spec!r}; "
                "lower k or raise suppression_limit"
            )
        test = result.transform(raw.frame(part.x_test))
        report = {
            "client": f"{part.client_id}:{part.domain}",
            "rows": len(train),
            "kept": len(result.table),
            "suppressed": len(result.suppressed),
            "levels": result.levels,
            "qis": list(qis),
            "sensitive": "label" if sensitive == LABEL else sensitive,
            **achieved(result.table, qis, sensitive),
            "info_loss": float(result.metrics.get("loss", float("nan"))),
            **{k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)},
        }
        done.append(AnonymizedClient(part.client_id, part.domain, result.table, test, report))
    encoder = GeneralizedEncoder(raw, qis, hierarchies).fit([a.table for a in done])
    clients = []
    for part, anon in zip(raw_clients, done, strict=True):
        keep = anon.table.index.to_numpy()
        clients.append(
            ClientPartition(
                client_id=part.client_id,
                domain=part.domain,
                x_train=encoder.transform(anon.table),
                y_train=part.y_train[keep],
                x_test=encoder.transform(anon.test_table),
                y_test=part.y_test,
                groups_train=None
                if part.groups_train is None
                else part.groups_train.iloc[keep].reset_index(drop=True),
                groups_test=part.groups_test,
            )
        )

    def enc(x: np.ndarray) -> np.ndarray:
        return encoder.transform(raw.frame(x))

    domains = {
        n: Domain(n, enc(d.x_train), d.y_train, enc(d.x_test), d.y_test, d.groups_train, d.groups_test)
        for n, d in raw.domains.items()
    }
    dim = clients[0].x_train.shape[1]
    ready = FederationData(
        name=raw.name,
        domains=domains,
        num_classes=raw.num_classes,
        input_shape=(dim,),
        kind=raw.kind,
        class_names=list(raw.class_names),
        default_target=raw.default_target,
        protected=dict(raw.protected),
    )
    return AnonymizedFederation(ready=ready, clients=clients, anonymized=done, qis=qis)
