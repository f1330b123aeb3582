"""Dataset schemas: which columns are QIs, sensitive, protected, and where their hierarchies live.

A schema is a small TOML file the user writes next to their own CSV, so that audits run on any
tabular data set without code changes. Paths inside it (data files, hierarchy CSVs) are relative
to the TOML file. Everything is validated up front; a malformed schema raises one `ConfigError`
line naming the file, the field and what was expected.
"""

from __future__ import annotations

import itertools
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from audits.datasets.protected import as_text, normalize
from fedlab.core.errors import ConfigError

BUILTIN = ("adult", "german")


class IntervalSpec(BaseModel):
    """Paper-style interval levels (Arcolezi et al.'s ``generate_intervals(values, low, high, step)``).

    Level 0 is every integer of ``leaves`` (``"range"``: min..max-1 of the data, exactly as the
    paper's code builds it, which leaves the maximum out; ``"values"``: the distinct values seen);
    level j is ``[a, a+step)`` on the grid ``low, low+step, ...`` for ``steps[j-1]``. Steps need not
    divide each other, so the levels need not nest: a node may then have two parents, which the
    full-domain algorithms accept because each level is applied to the raw value.
    """

    model_config = ConfigDict(extra="forbid")

    steps: list[int] = Field(min_length=1)
    low: float = 0
    high: float = 100
    leaves: Literal["range", "zero_to_max", "values"] = "values"

    @model_validator(mode="after")
    def _check(self) -> IntervalSpec:
        if any(s <= 0 for s in self.steps):
            raise ValueError("intervals.steps must be positive integers")
        if self.high <= self.low:
            raise ValueError("intervals.high must be greater than intervals.low")
        return self


class HierarchySpec(BaseModel):
    """An ARX-style CSV (`file`), nesting widths (`widths`) or paper-style `intervals`."""

    model_config = ConfigDict(extra="forbid")

    file: str | None = None
    widths: list[int] | None = None
    intervals: IntervalSpec | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> HierarchySpec:
        if sum(x is not None for x in (self.file, self.widths, self.intervals)) != 1:
            raise ValueError(
                "give exactly one of file = 'path.csv', widths = [5, 10, ...] or "
                "intervals = { steps = [5, 10], low = 0, high = 100 }"
            )
        if self.widths is not None:
            if not self.widths or any(w <= 0 for w in self.widths):
                raise ValueError("widths must be a non-empty list of positive integers")
            if any(b % a for a, b in itertools.pairwise(self.widths)):
                raise ValueError("each width must divide the next so the intervals nest")
        return self


class RowFilter(BaseModel):
    """Keep only rows whose `column` lies in [min, max] (inclusive) and/or in `values`."""

    model_config = ConfigDict(extra="forbid")

    column: str
    min: float | None = None
    max: float | None = None
    values: list[str | int | float] | None = None

    @model_validator(mode="after")
    def _check(self) -> RowFilter:
        if self.min is None and self.max is None and self.values is None:
            raise ValueError(f"filter on {self.column!r} needs min, max or values")
        return self


class Schema(BaseModel):
    """Column roles of one tabular data set (see module docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    target: str
    positive_label: str | int | float | bool = 1
    # numeric target binarized as int(value > threshold); "median" = median of the rows as read,
    # before filters (as the paper's code does); the positive label is then 1
    threshold: Literal["median"] | float | None = None
    # the label that is good for the person (a loan, not "high risk"); default: positive_label
    favourable_label: str | int | float | bool | None = None
    # read only these columns (others, e.g. mostly-empty ones, never cause a row to be dropped)
    use_columns: list[str] = Field(default_factory=list)
    filters: list[RowFilter] = Field(default_factory=list)
    # column -> {old value: new value}, applied after filters (e.g. African-American -> Black)
    rename: dict[str, dict[str, str]] = Field(default_factory=dict)
    quasi_identifiers: list[str] = Field(min_length=1)
    sensitive: str | None = None
    # attribute -> privileged value(s): { sex = "Male", race = ["Caucasian", "Asian"] } or the list
    # form ["sex:Male", "race:Caucasian|Asian"] (audits.datasets.protected: THE syntax); a bare
    # "attr" only for a two-valued column. Stored normalized: "value" or ["a", "b"] ([] = resolve)
    protected: dict[str, str | list[str]] = Field(default_factory=dict)
    # a target with more than two values: "error" (default) or "positive_vs_rest" (positive_label
    # = 1, every other value = 0, stated in the report)
    multiclass: Literal["error", "positive_vs_rest"] = "error"
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    hierarchies: dict[str, HierarchySpec] = Field(default_factory=dict)
    drop: list[str] = Field(default_factory=list)
    na_values: list[str] = Field(default_factory=list)
    # How to read the data files (all optional for a plain CSV with a header row).
    files: list[str] = Field(default_factory=list)  # data files relative to the TOML; concatenated
    columns: list[str] = Field(default_factory=list)  # names when the files have no header row
    sep: str = ","
    comment: str | None = None

    _base_dir: Path | None = PrivateAttr(default=None)

    @field_validator("protected", mode="before")
    @classmethod
    def _protected(cls, v: object) -> dict[str, str | list[str]]:
        try:
            return normalize(v, "protected")
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _consistent(self) -> Schema:
        if self.sensitive is not None and self.sensitive in self.quasi_identifiers:
            raise ValueError(f"sensitive column {self.sensitive!r} cannot also be a quasi-identifier")
        unknown = [h for h in self.hierarchies if h not in self.quasi_identifiers and h != self.sensitive]
        if unknown:
            raise ValueError(
                f"hierarchies given for {unknown}, which are neither QIs nor the sensitive column"
            )
        both = sorted(set(self.numeric) & set(self.categorical))
        if both:
            raise ValueError(f"columns {both} are listed as both numeric and categorical")
        dropped = sorted(set(self.drop) & {self.target, *self.quasi_identifiers, *self.protected})
        if dropped:
            raise ValueError(f"columns {dropped} are dropped but also used as target/QI/protected")
        if self.use_columns:
            roles = [self.target, *self.quasi_identifiers, *self.protected]
            roles += [self.sensitive] if self.sensitive else []
            missing = [c for c in roles if c not in self.use_columns]
            if missing:
                raise ValueError(f"columns {missing} are used but not listed in use_columns")
        return self

    @property
    def favourable(self) -> str:
        """The favourable label as a string (defaults to the positive label)."""
        return as_text(self.positive_label if self.favourable_label is None else self.favourable_label)

    @property
    def favourable_is_positive(self) -> bool:
        """Whether the favourable outcome is the positive label (y = 1) or the other one (y = 0).

        Why: every group metric is computed on the favourable outcome (AIF360's convention), so a
        schema whose positive label is "re-offended" audits the rate of *not* being predicted so."""
        return self.favourable == as_text(self.positive_label)

    @property
    def favourable_class(self) -> int:
        """1 when the favourable outcome is the positive label, else 0."""
        return 1 if self.favourable_is_positive else 0

    @property
    def base_dir(self) -> Path | None:
        """Folder that relative paths in this schema refer to (the TOML's folder)."""
        return self._base_dir

    def resolve(self, relative: str) -> Path:
        """Absolute path of a file named in the schema."""
        path = Path(relative)
        if path.is_absolute() or self._base_dir is None:
            return path
        return self._base_dir / path


def _format_error(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"field {loc}: {msg} (got {err.get('input')!r})")
    return f"{source}: invalid schema: " + "; ".join(parts)


def read_toml(path: str | Path, kind: str) -> dict:
    """A TOML file's table, or a one-line ConfigError naming the `kind` of file and what is wrong."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{kind} file {p} not found")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc


def load_schema(path: str | Path) -> Schema:
    """Read and validate a schema TOML; relative paths in it resolve against its folder."""
    p = Path(path)
    data = read_toml(p, "schema")
    try:
        schema = Schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, str(p))) from exc
    schema._base_dir = p.resolve().parent
    return schema


def builtin_dir() -> Path:
    """Folder of the embedded data sets (audits/datasets/data)."""
    return Path(str(resources.files("audits.datasets.data")))


def builtin_schema(name: str) -> Schema:
    """Schema of an embedded data set: "adult" or "german"."""
    if name not in BUILTIN:
        raise ConfigError(f"unknown built-in dataset {name!r}: expected one of {', '.join(BUILTIN)}")
    return load_schema(builtin_dir() / f"{name}.toml")
