"""Tolerant readers for run-directory files.

A report must still come out for an interrupted run or one written by an older fedlab, so
every reader returns None / what it could parse and records a plain-language note in
`Notes` instead of raising.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class Notes:
    """What the report could not show and why (becomes the report's "missing" list)."""

    items: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        """Record one thing the report could not read or had to recompute (listed under 'missing or
        incomplete')."""
        if text not in self.items:
            self.items.append(text)


def read_json(path: Path, notes: Notes, why: str) -> dict[str, Any] | None:
    """A JSON file, or None with a note saying what is lost without it."""
    if not path.is_file():
        notes.add(f"{path.name} is missing: {why}")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        notes.add(f"{path.name} is not valid JSON ({exc.__class__.__name__}: {exc}): {why}")
        return None
    if not isinstance(data, dict):
        notes.add(f"{path.name} does not hold a JSON object: {why}")
        return None
    return data


def read_jsonl(path: Path, notes: Notes, why: str) -> list[dict[str, Any]]:
    """Every complete JSON line; a truncated or corrupt line is skipped and noted."""
    if not path.is_file():
        notes.add(f"{path.name} is missing: {why}")
        return []
    records: list[dict[str, Any]] = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            notes.add(f"{path.name} line {number} is truncated or corrupt and was skipped")
            continue
        if isinstance(record, dict):
            records.append(record)
    if not records:
        notes.add(f"{path.name} holds no complete round: {why}")
    return records


def read_toml(path: Path, notes: Notes, why: str) -> dict[str, Any] | None:
    """A TOML file, or None with a note saying what is lost without it."""
    if not path.is_file():
        notes.add(f"{path.name} is missing: {why}")
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        notes.add(f"{path.name} is not valid TOML ({exc}): {why}")
        return None


def read_csv(path: Path, notes: Notes, why: str) -> pd.DataFrame | None:
    """A CSV file, or None with a note saying what is lost without it."""
    if not path.is_file():
        notes.add(f"{path.name} is missing: {why}")
        return None
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        notes.add(f"{path.name} could not be read ({exc.__class__.__name__}): {why}")
        return None
