"""The Arcolezi et al. 2025 audit protocol (``fedlab audit --protocol arcolezi2025``), cell by cell.

Each difference from fedlab's default protocol is an explicit `ProtocolSettings` field, so it can be
switched and its effect measured (see `audits.reproductions.arcolezi2025.switches`):

- split: plain (not stratified) ``train_test_split(test_size=0.2, random_state=seed)``;
- anonymization: ANJANA-style greedy full-domain generalization of the TRAIN split, 20 %
  suppression, every non-target column a QI (the protected attributes included), ℓ-diversity and
  t-closeness on the binarized target, each combined with a k (k = 1: no anonymization at all);
- ``protected_in_test``: "raw" (the paper) leaves the evaluated protected attribute of the test
  split un-generalized while every other QI is recoded to the training levels; "generalized"
  recodes it too (fedlab's default protocol keeps groups raw only for *measuring*);
- ``encoding``: "label" (the paper: one string→code encoder per column fitted on train+test) or
  "onehot";
- ``classifier``: "xgboost" (the paper: defaults, ``random_state = seed``) or a fedlab classifier;
- ``hierarchy_gaps``: what happens when a value is outside its hierarchy (the paper's COMPAS days
  hierarchy ``range(-30, 30)`` leaves out 30): "error" (checked before any cell runs), "repair"
  (add the value), "paper" (as the published code behaves: a cell fails when its training split
  holds the value and the column must be generalized; test values outside become missing).

Group metrics and the individual metrics are the paper's own (`paper_metrics` here).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from audits.reproductions.arcolezi2025 import paper_metrics as pm
from audits.reproductions.arcolezi2025.encode import as_text, encode, map_distinct
from fedlab.core.errors import ConfigError, DataError, FedlabError

__all__ = ["PaperData", "ProtocolSettings", "Spec", "as_text", "encode", "run_cell", "run_cells"]

METHODS = {"k": "k-anonymity", "l": "l-diversity", "t": "t-closeness"}
PAPER_COLUMNS = [
    "SEED", "protected_att", "target", "method", "k_parameter", "anon_parameter",
    *pm.GROUP_KEYS, *pm.UTILITY_KEYS, "CM", *pm.INDIVIDUAL_KEYS,
]  # fmt: skip
EXTRA_COLUMNS = [
    "status", "protected_in_test", "encoding", "classifier", "n_train", "n_test",
    "suppressed_rows", "levels", "protected_generalized", "seconds",
]  # fmt: skip


@dataclass(frozen=True)
class ProtocolSettings:
    """The switches of the paper's evaluation protocol (see module docstring)."""

    protected_in_test: Literal["raw", "generalized"] = "raw"
    encoding: Literal["label", "onehot"] = "label"
    classifier: str = "xgboost"
    hierarchy_gaps: Literal["error", "repair", "paper"] = "error"
    # "anjana": k-anonymity first, then ANJANA's ℓ / t greedy on its output (the paper);
    # "combined": fedlab's single greedy search for the (k, ℓ) / (k, t) model
    privacy_steps: Literal["anjana", "combined"] = "anjana"
    # "anjana": training values climb one level at a time through the node's first row, and the
    # test split is mapped leaf -> label at the first level holding every training value (the
    # paper); "leaf": every level applied to the raw value on both sides (differs only for
    # non-nesting interval levels)
    level_mapping: Literal["anjana", "leaf"] = "anjana"
    suppression_limit: float = 0.2
    test_size: float = 0.2
    workers: int = 1  # the paper's chunking of ASF / NCF (its os.cpu_count())
    threads: int = 1


@dataclass(frozen=True)
class Spec:
    """One privacy cell: method family, k and the ℓ / t parameter."""

    family: Literal["k", "l", "t"]
    k: int
    param: float | None = None

    @property
    def method(self) -> str:
        return METHODS[self.family]

    @property
    def anon_parameter(self) -> float:
        return self.k if self.family == "k" else float(self.param)  # type: ignore[arg-type]


@dataclass
class PaperData:
    """The prepared table and what the protocol needs about it (picklable for worker processes)."""

    frame: pd.DataFrame
    target: str
    qis: list[str]
    protected: dict[str, str]
    hierarchies: dict[str, Any]  # used for anonymization (repaired in "paper" / "repair" mode)
    leaves: dict[str, set[str]] = field(default_factory=dict)  # the hierarchies' own level 0
    chained: dict[str, Any] = field(default_factory=dict)  # ANJANA's level-by-level view of each

    def train_hierarchies(self, settings: ProtocolSettings) -> dict[str, Any]:
        """Hierarchies the training split is generalized with (see ``level_mapping``)."""
        if settings.level_mapping == "leaf":
            return self.hierarchies
        if not self.chained:
            self.chained = {q: h.chained() for q, h in self.hierarchies.items()}
        return self.chained


def paper_grid(ks: list[int], ls: list[int], ts: list[float], families: list[str]) -> list[Spec]:
    """The paper's grid: k-anonymity for every k, and ℓ / t each combined with every k."""
    specs: list[Spec] = []
    if "k" in families:
        specs += [Spec("k", k) for k in ks]
    if "l" in families:
        specs += [Spec("l", k, float(l)) for l in ls for k in ks]  # noqa: E741
    if "t" in families:
        specs += [Spec("t", k, float(t)) for t in ts for k in ks]
    return specs


def paper_classifier(name: str, seed: int, threads: int) -> Any:
    """XGBoost with the paper's settings, or one of fedlab's classifiers (clear error if missing)."""
    if name == "xgboost":
        try:
            from xgboost import XGBClassifier
        except ImportError as exc:
            raise ConfigError(
                "classifier 'xgboost' needs the xgboost package: pip install 'fedlab[xgboost]'"
            ) from exc
        return XGBClassifier(random_state=seed, n_jobs=threads)
    from audits.experiment.classifiers import CLASSIFIERS, _estimator

    if name not in CLASSIFIERS:
        raise ConfigError(f"unknown classifier {name!r}; expected xgboost or {', '.join(CLASSIFIERS)}")
    return _estimator(name, seed)


def _recode_test(
    test: pd.DataFrame, data: PaperData, levels: dict[str, int], keep_raw: set[str], gaps: str
) -> pd.DataFrame:
    """Test split at the training levels (every QI but `keep_raw`), as hierarchy labels of the
    raw leaf (the paper's ``dict(zip(level 0, level L))``)."""
    out = test.copy()
    for q in data.qis:
        if q in keep_raw:
            continue
        h = data.hierarchies[q]
        if gaps == "paper":
            known = pd.Series(map_distinct(test[q], _key), index=test.index).isin(data.leaves[q])
        else:
            known = pd.Series(True, index=test.index)
        recoded = pd.Series(np.nan, index=test.index, dtype=object)
        if known.any():
            recoded[known] = h.generalize(test.loc[known, q], levels[q]).to_numpy()
        out[q] = recoded  # the paper's dict mapping leaves unknown values missing ("nan")
    return out


def _key(v: object) -> str:
    from audits.anonymity.hierarchy import value_key

    return value_key(v)


def anonymize_train(
    train: pd.DataFrame, spec: Spec, data: PaperData, settings: ProtocolSettings,
    k_steps: dict[int, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, int], int]:  # fmt: skip
    """(anonymized train, level per QI, suppressed rows); k = 1 leaves the split untouched.

    `k_steps` (k -> k-anonymity result or its error) shares the k-anonymity step between the
    k, ℓ and t cells of one split: in the paper's two-step protocol they all start from it."""
    return _anonymize_train(train, spec, data, settings, k_steps)[:3]


def _anonymize_train(
    train: pd.DataFrame, spec: Spec, data: PaperData, settings: ProtocolSettings,
    k_steps: dict[int, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, int], int, tuple]:  # fmt: skip
    """As `anonymize_train`, plus a key that is equal for cells with the same training table."""
    if spec.k == 1:
        return train, {}, 0, ("raw",)
    from audits.anonymity import PrivacyModel, anonymize

    kw: dict[str, Any] = {"k": spec.k}
    two_step = settings.privacy_steps == "anjana" and spec.family in ("l", "t")
    if two_step:  # k-anonymity first; the ℓ / t step follows below
        pass
    elif spec.family == "l":
        kw["l"] = int(spec.param)  # type: ignore[arg-type]
    elif spec.family == "t":
        kw["t"] = float(spec.param)  # type: ignore[arg-type]
    hier = data.train_hierarchies(settings)
    shared = k_steps is not None and len(kw) == 1  # plain k-anonymity: the same for k, ℓ, t cells
    res = k_steps.get(spec.k) if shared else None  # type: ignore[union-attr]
    if res is None:
        try:
            res = anonymize(
                train,
                data.qis,
                hier,
                PrivacyModel(**kw),
                algorithm="greedy",
                suppression_limit=settings.suppression_limit,
                sensitive=data.target if spec.family in ("l", "t") and not two_step else None,
            )
        except (FedlabError, ValueError) as exc:
            res = exc
        if shared:
            k_steps[spec.k] = res  # type: ignore[index]
    if isinstance(res, Exception):
        raise res
    levels = dict(res.levels or {})
    table = res.table
    if two_step:
        from audits.reproductions.arcolezi2025.anjana_steps import continue_greedy

        kept, levels = continue_greedy(
            train, res.table.index, levels, hier, data.qis, data.target,
            spec.family, float(spec.param), settings.suppression_limit,
        )  # fmt: skip
        from audits.anonymity import apply_levels

        table = apply_levels(train.loc[kept], data.qis, hier, levels)
    key = (tuple(levels.get(q, 0) for q in data.qis), table.index.to_numpy().tobytes())
    if settings.hierarchy_gaps == "paper":
        for q, lv in levels.items():
            if lv == 0:
                continue
            outside = ~pd.Series(map_distinct(train[q], _key), index=train.index).isin(data.leaves[q])
            if outside.any():
                raise DataError(
                    f"value {train.loc[outside, q].iloc[0]!r} of {q!r} is not in its hierarchy "
                    f"({int(outside.sum())} training rows) and {q!r} must be generalized to level {lv} "
                    "(the paper's code raised KeyError here and skipped the row)"
                )
    if settings.level_mapping == "anjana":  # the paper reads the level back from the labels
        levels = {q: _first_level(data.hierarchies[q], table[q], lv) for q, lv in levels.items()}
    # ANJANA returns every QI as hierarchy labels, level 0 included (days 5.0 -> '5')
    return table, levels, len(train) - len(table), key


def _first_level(h: Any, values: pd.Series, fallback: int) -> int:
    """The paper's ``get_generalization_levels``: first level whose labels hold every value."""
    found = h.level_of(pd.unique(values.astype(str)))
    return fallback if found is None else found


def predict(
    gen_train: pd.DataFrame,
    test: pd.DataFrame,
    spec: Spec,
    seed: int,
    levels: dict[str, int],
    data: PaperData,
    settings: ProtocolSettings,
    keep_raw: set[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit on the anonymized train split; (hard predictions, probabilities, encoded test features)."""
    gen_test = test if spec.k == 1 else _recode_test(test, data, levels, keep_raw, settings.hierarchy_gaps)
    features = [c for c in gen_train.columns if c != data.target]
    X_train, X_test = encode(gen_train[features], gen_test[features], settings.encoding)
    y_train = gen_train[data.target].astype(int).to_numpy()
    model = paper_classifier(settings.classifier, seed, settings.threads)
    model.fit(X_train, y_train)
    pred = np.asarray(model.predict(X_test)).round().astype(int).reshape(-1)
    return pred, model.predict_proba(X_test), X_test


def model_metrics(
    test: pd.DataFrame, pred: np.ndarray, proba: np.ndarray, X_test: np.ndarray, data: PaperData, workers: int
) -> dict[str, Any]:
    """The paper's metrics that depend on the model only: utility, confusion matrix, ASF/ALF/NCF."""
    from sklearn.metrics import confusion_matrix

    y_test = test[data.target].astype(int).to_numpy()
    row: dict[str, Any] = dict(pm.utility_metrics(y_test, pred))
    row["CM"] = json.dumps(confusion_matrix(y_test, pred, labels=[0, 1]).tolist())
    row.update(pm.individual_metrics(proba, X_test, workers=workers))
    return row


def metrics_of(
    test: pd.DataFrame, pred: np.ndarray, shared: dict[str, Any], data: PaperData, attr: str
) -> dict[str, Any]:
    """The paper's metrics for protected attribute `attr` (group 1 = its privileged value);
    `shared` is `model_metrics` of the same predictions."""
    y_test = test[data.target].astype(int).to_numpy()
    group = (test[attr].astype(str) == str(data.protected[attr])).to_numpy()
    return {**pm.group_metrics(y_test, pred, group), **shared}


def run_cell(data: PaperData, spec: Spec, seed: int, settings: ProtocolSettings) -> list[dict[str, Any]]:
    """One (privacy cell, seed): anonymize once, evaluate every protected attribute."""
    return run_cells(data, [spec], seed, settings)[0]


def run_cells(
    data: PaperData, specs: list[Spec], seed: int, settings: ProtocolSettings
) -> list[list[dict[str, Any]]]:
    """The rows of each cell in `specs` for one seed, sharing work between cells of one split.

    Shared, because it is the same computation: the split; the k-anonymity step of cells with
    the same k (the paper's ℓ / t start from it); and the model, predictions and individual
    metrics of cells whose anonymized training table is identical (e.g. every cell at k = 1, or
    an ℓ / t cell whose second step changed nothing). ``seconds`` is each cell's own time.
    """
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(data.frame, test_size=settings.test_size, random_state=seed)
    k_steps: dict[int, Any] = {}
    fitted: dict[tuple, tuple[np.ndarray, dict[str, float]]] = {}
    return [_cell_rows(train, test, data, spec, seed, settings, k_steps, fitted) for spec in specs]


def _cell_rows(
    train: pd.DataFrame, test: pd.DataFrame, data: PaperData, spec: Spec, seed: int,
    settings: ProtocolSettings, k_steps: dict[int, Any], fitted: dict[tuple, Any],
) -> list[dict[str, Any]]:  # fmt: skip
    t0 = time.perf_counter()
    base = {
        "SEED": seed, "target": data.target, "method": spec.method, "k_parameter": spec.k,
        "anon_parameter": spec.anon_parameter, "protected_in_test": settings.protected_in_test,
        "encoding": settings.encoding, "classifier": settings.classifier,
        "n_train": len(train), "n_test": len(test),
    }  # fmt: skip
    rows = []
    try:
        gen_train, levels, suppressed, key = _anonymize_train(train, spec, data, settings, k_steps)
        if gen_train[data.target].nunique() < 2:
            raise DataError(f"anonymized train split has {len(gen_train)} rows and one class")
        failure = ""
    except (FedlabError, ValueError) as exc:
        failure, levels, suppressed, key = f"failed: {' '.join(str(exc).split())}", {}, 0, ()
    for attr in data.protected:
        row = {**base, "protected_att": attr, "levels": json.dumps(levels), "suppressed_rows": suppressed}
        row["protected_generalized"] = bool(levels.get(attr, 0) > 0)
        if failure:
            row["status"] = failure
        else:
            keep_raw = {attr} if settings.protected_in_test == "raw" else set()
            # a raw attribute that training left at level 0 changes nothing: share the model
            memo = (key, frozenset(a for a in keep_raw if levels.get(a, 0) > 0))
            if memo not in fitted:
                pred, proba, X_test = predict(gen_train, test, spec, seed, levels, data, settings, keep_raw)
                fitted[memo] = (pred, model_metrics(test, pred, proba, X_test, data, settings.workers))
            row.update(metrics_of(test, *fitted[memo], data, attr), status="ok")
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    return rows
