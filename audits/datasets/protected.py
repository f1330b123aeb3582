"""Protected attributes and their privileged values: ONE syntax for audit schemas and federations.

Why: a privileged group chosen silently (the most frequent value) made *African-American* the
privileged race of a recidivism table. So the privileged value(s) are stated by the user, in the
same form in an audit schema (``protected = { race = "Caucasian" }``) and in a federation config
(``[federation] protected = { race = "Caucasian" }`` or the list form ``["race:Caucasian"]``):

* ``{attr = "value"}`` or ``"attr:value"``: one privileged value;
* ``{attr = ["a", "b"]}`` or ``"attr:a|b"``: several privileged values, one privileged group;
* ``"attr"`` alone (or ``{attr = []}``): allowed only for a two-valued column; the privileged
  value is then its most frequent one, and `describe` says so (never chosen for more values:
  a multi-valued column without a privileged value is a one-line error).

`normalize` turns any of these forms into ``{column: "value"}`` (one privileged value) or
``{column: ["a", "b"]}`` (several; ``[]`` = still to be resolved against the data) — the form
schemas, federations, run summaries and reports all carry.

Every value not privileged forms the single *unprivileged* group (privileged vs the rest).
Values are compared as text after the same normalisation as the data (strip; ``1.0`` == ``1``),
so numbers and strings are both accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fedlab.core.errors import ConfigError, DataError

Scalar = str | int | float | bool


def as_text(value: Any) -> str:
    """A label or attribute value as the text it is compared by (``1.0`` -> ``"1"``)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@dataclass(frozen=True)
class ProtectedAttribute:
    """One protected attribute: its column, its privileged values, and whether they were given."""

    column: str
    privileged: tuple[str, ...] = ()
    given: bool = True  # False: a two-valued column's most frequent value, chosen by `resolve`

    def describe(self) -> str:
        """``race: privileged Caucasian vs every other value`` (with how it was chosen)."""
        values = " | ".join(self.privileged) or "?"
        how = "" if self.given else " (most frequent of two values; not given)"
        return f"{self.column}: privileged {values}{how} vs every other value"


def parse_protected(
    spec: Mapping[str, Scalar | Iterable[Scalar]] | Iterable[str] | None,
) -> list[ProtectedAttribute]:
    """The user's form (table or list of ``attr[:v1|v2]``) -> attributes; ConfigError on a bad entry."""
    if not spec:
        return []
    out: list[ProtectedAttribute] = []
    if isinstance(spec, Mapping):
        for column, values in spec.items():
            items = [values] if isinstance(values, str | int | float | bool) else list(values)
            if not items:
                raise ConfigError(f"protected.{column}: give at least one privileged value")
            out.append(ProtectedAttribute(str(column), tuple(as_text(v) for v in items)))
        return out
    for entry in spec:
        if not isinstance(entry, str) or not entry.strip():
            raise ConfigError(f"protected entry {entry!r}: expected 'attr' or 'attr:privileged[|other]'")
        column, sep, values = entry.partition(":")
        privileged = tuple(as_text(v) for v in values.split("|") if v.strip()) if sep else ()
        if sep and not privileged:
            raise ConfigError(f"protected entry {entry!r}: no privileged value after ':'")
        out.append(ProtectedAttribute(column.strip(), privileged, given=bool(sep)))
    return out


Privileged = str | list[str] | tuple[str, ...]


def normalize(spec: Any, source: str = "protected") -> dict[str, str | list[str]]:
    """Any accepted user form -> ``{column: value}`` / ``{column: [values]}`` (``[]``: unresolved).

    ConfigError (one line naming `source`) on anything else."""
    if spec is None or spec == {} or spec == []:
        return {}
    if isinstance(spec, str) or not isinstance(spec, Mapping | list | tuple):
        raise ConfigError(
            f"{source}: expected a table {{ attr = \"privileged\" }} or a list like [\"attr:privileged\"], "
            f"got {spec!r}"
        )
    if isinstance(spec, Mapping):
        out: dict[str, str | list[str]] = {}
        for column, values in spec.items():
            if isinstance(values, str | int | float | bool):
                out[str(column)] = as_text(values)
            elif isinstance(values, list | tuple) and all(
                isinstance(v, str | int | float | bool) for v in values
            ):
                texts = [as_text(v) for v in values]
                out[str(column)] = texts[0] if len(texts) == 1 else texts
            else:
                raise ConfigError(
                    f"{source}.{column}: expected a privileged value or a list of them, got {values!r}"
                )
        return out
    try:
        attrs = parse_protected(spec)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return {
        a.column: (a.privileged[0] if len(a.privileged) == 1 else list(a.privileged)) for a in attrs
    }


def privileged_values(value: Privileged | Scalar) -> tuple[str, ...]:
    """The privileged values of one attribute as texts: ``"Male"`` -> ``("Male",)``."""
    if isinstance(value, list | tuple):
        return tuple(as_text(v) for v in value)
    return (as_text(value),)


def privileged_text(value: Privileged | Scalar) -> str:
    """``Male`` or ``Caucasian | Asian``: how reports name a privileged group."""
    return " | ".join(privileged_values(value)) or "?"


def privileged_mask(values: Any, privileged: Privileged | Scalar) -> np.ndarray:
    """True where the attribute takes a privileged value (compared as text: 1 == "1" == 1.0)."""
    wanted = set(privileged_values(privileged))
    return pd.Series(np.asarray(values, dtype=object)).map(as_text).isin(wanted).to_numpy()


def resolve_mapping(
    protected: Mapping[str, Privileged], frame: pd.DataFrame, source: str
) -> dict[str, str | list[str]]:
    """`resolve` on the normalized form: unresolved two-valued columns get their most frequent
    value; every error is one DataError line naming `source`, the column and its values."""
    attrs = [ProtectedAttribute(c, privileged_values(v) if v else ()) for c, v in protected.items()]
    done = resolve(attrs, frame, source)
    return {a.column: a.privileged[0] if len(a.privileged) == 1 else list(a.privileged) for a in done}


def resolve(
    attributes: list[ProtectedAttribute], frame: pd.DataFrame, source: str
) -> list[ProtectedAttribute]:
    """Check every attribute against the data; fill a two-valued column's privileged value.

    DataError (one line, naming `source`, the column and the values found) when a column is
    missing, a privileged value does not occur, or a column with more than two values has none."""
    done = []
    for attr in attributes:
        if attr.column not in frame.columns:
            raise DataError(f"{source}: protected column {attr.column!r} not found")
        values = frame[attr.column].dropna().map(as_text)
        counts = values.value_counts()
        if not attr.privileged:
            if len(counts) != 2:
                raise DataError(
                    f"{source}: protected column {attr.column!r} has {len(counts)} values "
                    f"({', '.join(map(str, counts.index[:8]))}{', ...' if len(counts) > 8 else ''}); "
                    f"name the privileged one(s), e.g. '{attr.column}:{counts.index[0]}'"
                )
            done.append(ProtectedAttribute(attr.column, (str(counts.index[0]),), given=False))
            continue
        missing = [v for v in attr.privileged if v not in counts.index]
        if missing:
            raise DataError(
                f"{source}: privileged value {missing[0]!r} not in protected column {attr.column!r}; "
                f"values are {', '.join(map(str, counts.index[:8]))}{', ...' if len(counts) > 8 else ''}"
            )
        done.append(attr)
    return done
