"""What an audit covers: the validated grid of privacy models, algorithms, classifiers and seeds.

`AuditGrid` is the configuration (a TOML file and/or CLI options, validated up front);
`PrivacySpec` is one privacy model of it and `Task` one anonymization (client, privacy model,
algorithm, seed) together with the classifiers it feeds. `cell_id` names one (task, classifier)
result row — the unit that is checkpointed, resumed and published.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audits.datasets.schema import read_toml
from audits.experiment.classifiers import CLASSIFIERS
from fedlab.core.errors import ConfigError

ALGORITHMS = ("optimal", "mondrian", "greedy")
DATASETS = ("adult", "german")
FAMILIES = ("k", "l", "t")


class AuditGrid(BaseModel):
    """What to audit. Every field is validated before any data is read or directory made.

    Privacy models: ``k`` gives one k-anonymity model per value of `ks` (k=1 is the
    baseline: no anonymization, algorithm "none"); ``l`` gives (k, l)-models for every
    l in `ls` crossed with every k in `l_ks` (default: `ks`; k=1 means l-diversity alone);
    ``t`` likewise crosses `ts` with `t_ks` (default [1]: t-closeness alone).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    dataset: str = "adult"
    schema_path: str = ""
    csv: str = ""
    models: list[Literal["k", "l", "t"]] = Field(default_factory=lambda: list(FAMILIES))
    ks: list[int] = Field(default_factory=lambda: [1, 2, 5, 10, 25, 50, 100])
    ls: list[int] = Field(default_factory=lambda: [2])  # l = 3 is impossible on a binary sensitive column
    ts: list[float] = Field(default_factory=lambda: [0.45, 0.5, 0.55])
    l_ks: list[int] | None = None
    t_ks: list[int] | None = Field(default_factory=lambda: [1])
    l_kind: Literal["distinct", "entropy"] = "distinct"
    algorithms: list[str] = Field(default_factory=lambda: list(ALGORITHMS))
    classifiers: list[str] = Field(default_factory=lambda: ["logreg", "rf", "hgb"])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    suppression_limit: float = Field(0.2, ge=0, le=1)
    test_size: float = Field(0.3, gt=0, lt=1)
    split_by: str = ""
    max_rows: int = Field(0, ge=0)  # 0 = all rows; else a stratified subsample (fixed seed 0)
    individual_rows: int = Field(2000, ge=10)  # query rows for individual fairness
    k_neighbors: int = Field(100, ge=1)  # NCF / ASF / ALF neighbourhood size
    n_jobs: int = Field(1, ge=-1)  # processes; 0 or -1 = all cores
    # groups with fewer test rows are left out of the max-gap-over-groups numbers and marked
    min_group_size: int = Field(30, ge=0)
    export: bool = False  # write each cell's anonymized train table and test predictions

    @field_validator("ks", "l_ks", "t_ks")
    @classmethod
    def _ks(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or any(k < 1 for k in v)):
            raise ValueError("k values must be a non-empty list of integers >= 1")
        return None if v is None else sorted(set(v))

    @field_validator("ls")
    @classmethod
    def _ls(cls, v: list[int]) -> list[int]:
        if any(x < 2 for x in v):
            raise ValueError("l values must be integers >= 2")
        return sorted(set(v))

    @field_validator("ts")
    @classmethod
    def _ts(cls, v: list[float]) -> list[float]:
        if any(not 0 < x < 1 for x in v):
            raise ValueError("t values must lie strictly between 0 and 1")
        return sorted(set(v))

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a not in ALGORITHMS]
        if bad or not v:
            raise ValueError(f"unknown algorithm {bad[0] if bad else ''!r}; expected {', '.join(ALGORITHMS)}")
        return list(dict.fromkeys(v))

    @field_validator("classifiers")
    @classmethod
    def _classifiers(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in CLASSIFIERS]
        if bad or not v:
            raise ValueError(
                f"unknown classifier {bad[0] if bad else ''!r}; expected {', '.join(CLASSIFIERS)}"
            )
        return list(dict.fromkeys(v))

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v or any(s < 0 for s in v):
            raise ValueError("seeds must be a non-empty list of integers >= 0")
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _source(self) -> AuditGrid:
        if self.csv and not self.schema_path:
            raise ValueError("csv needs a schema (schema_path / --schema)")
        if not self.csv and self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; expected one of {', '.join(DATASETS)}")
        if not self.models:
            raise ValueError("models must name at least one of k, l, t")
        return self

    def privacy_models(self) -> list[PrivacySpec]:
        specs: list[PrivacySpec] = []
        if "k" in self.models:
            specs += [PrivacySpec(k=k) for k in self.ks]
        if "l" in self.models:
            specs += [PrivacySpec(k=k, l=l) for k in (self.l_ks or self.ks) for l in self.ls]  # noqa: E741
        if "t" in self.models:
            specs += [PrivacySpec(k=k, t=t) for k in (self.t_ks or self.ks) for t in self.ts]
        return list(dict.fromkeys(specs))

    def portable(self) -> AuditGrid:
        """The same grid with `csv` and `schema_path` absolute, so its config.toml re-runs
        (``fedlab audit --config``) and reports from any working directory."""
        update = {
            key: str(Path(value).expanduser().resolve())
            for key, value in (("csv", self.csv), ("schema_path", self.schema_path))
            if value
        }
        return self.model_copy(update=update)

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps({k: v for k, v in self.model_dump().items() if v is not None})


def read_grid_file(path: str | Path) -> dict[str, Any]:
    """Raw grid fields from a TOML file (top level, or an ``[audit]`` table)."""
    data = read_toml(path, "config")
    return dict(data.get("audit", data))


def make_grid(data: dict[str, Any], source: str = "audit options") -> AuditGrid:
    """Validate grid fields; errors become one ConfigError line naming `source` and the field."""
    try:
        return AuditGrid.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            loc = ".".join(str(x) for x in err["loc"])
            parts.append(f"{loc}: {msg} (got {err.get('input')!r})" if loc else msg)
        raise ConfigError(f"{source}: " + "; ".join(parts)) from exc


def load_grid(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> AuditGrid:
    """Grid from an optional TOML file with non-None `overrides` applied."""
    data = read_grid_file(path) if path is not None else {}
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return make_grid(data, str(path) if path is not None else "audit options")


@dataclasses.dataclass(frozen=True)
class PrivacySpec:
    """One privacy model: k-anonymity, optionally with l-diversity or t-closeness."""

    k: int = 1
    l: int | None = None  # noqa: E741
    t: float | None = None

    @property
    def family(self) -> str:
        if self.l is not None:
            return "l"
        if self.t is not None:
            return "t"
        return "k" if self.k > 1 else "baseline"

    @property
    def label(self) -> str:
        if self.family == "baseline":
            return "baseline"
        parts = [f"k={self.k}"] if self.k > 1 or self.family == "k" else []
        parts += [f"l={self.l}"] if self.l is not None else []
        parts += [f"t={self.t:g}"] if self.t is not None else []
        return ",".join(parts)

    @property
    def slug(self) -> str:
        return self.label.replace("=", "").replace(",", "-")


@dataclasses.dataclass(frozen=True)
class Task:
    """One anonymization (client, privacy model, algorithm, seed) and the classifiers fed from it."""

    client: str
    spec: PrivacySpec
    algorithm: str
    seed: int
    classifiers: tuple[str, ...]

    def cell_id(self, classifier: str) -> str:
        return cell_id(self.client, self.spec, self.algorithm, classifier, self.seed)


def _safe(text: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text)
    if safe != text:  # keep distinct clients distinct after sanitising
        safe += "-" + hashlib.sha1(text.encode()).hexdigest()[:6]
    return safe


def cell_id(client: str, spec: PrivacySpec, algorithm: str, classifier: str, seed: int) -> str:
    return f"{_safe(client)}__{spec.slug}__{algorithm}__{classifier}__s{seed}"
