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

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from fedlab.errors import ConfigError

BUILTIN = ("adult", "german")


class HierarchySpec(BaseModel):
    """Either an ARX-style CSV (`file`) or interval widths generated from the data (`widths`)."""

    model_config = ConfigDict(extra="forbid")

    file: str | None = None
    widths: list[int] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> HierarchySpec:
        if (self.file is None) == (self.widths is None):
            raise ValueError("give exactly one of file = 'path.csv' or widths = [5, 10, ...]")
        if self.widths is not None:
            if not self.widths or any(w <= 0 for w in self.widths):
                raise ValueError("widths must be a non-empty list of positive integers")
            if any(b % a for a, b in itertools.pairwise(self.widths)):
                raise ValueError("each width must divide the next so the intervals nest")
        return self


class Schema(BaseModel):
    """Column roles of one tabular data set (see module docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    target: str
    positive_label: str | int | float | bool
    quasi_identifiers: list[str] = Field(min_length=1)
    sensitive: str | None = None
    # attribute -> privileged value (e.g. sex = "Male")
    protected: dict[str, str | int | float | bool] = Field(default_factory=dict)
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
        return self

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


def load_schema(path: str | Path) -> Schema:
    """Read and validate a schema TOML; relative paths in it resolve against its folder."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"schema file {p} not found")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    try:
        schema = Schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, str(p))) from exc
    schema._base_dir = p.resolve().parent
    return schema


def builtin_dir() -> Path:
    """Folder of the embedded data sets (audits/data)."""
    return Path(str(resources.files("audits.data")))


def builtin_schema(name: str) -> Schema:
    """Schema of an embedded data set: "adult" or "german"."""
    if name not in BUILTIN:
        raise ConfigError(f"unknown built-in dataset {name!r}: expected one of {', '.join(BUILTIN)}")
    return load_schema(builtin_dir() / f"{name}.toml")
