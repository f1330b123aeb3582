"""Typed parsing of comma-separated CLI values: one `error:` line naming the value, never a traceback.

Kept apart from the commands so each command file holds only its options and output."""

from __future__ import annotations

from fedlab.core.errors import ConfigError


def parse_options(text: str) -> dict[str, float | int | bool | str]:
    """``--strategy-options "eta=0.01,q=2,flag=true"`` -> typed values (one error line otherwise)."""
    out: dict[str, float | int | bool | str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--strategy-options {text!r}: {part!r} is not KEY=VALUE")
        raw = raw.strip()
        value: float | int | bool | str
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            try:
                value = int(raw)
            except ValueError:
                try:
                    value = float(raw)
                except ValueError:
                    value = raw
        out[key.strip()] = value
    return out


def parse_seeds(text: str) -> list[int]:
    """``--seeds "0,1,2"`` -> [0, 1, 2]: integers, at least one, no duplicates (else one error line)."""
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise ConfigError(f"--seeds {text!r}: no seed given; expected comma-separated integers like 0,1,2")
    seeds: list[int] = []
    for part in parts:
        try:
            value = int(part)
        except ValueError:
            raise ConfigError(
                f"--seeds {text!r}: {part!r} is not an integer; expected comma-separated integers like 0,1,2"
            ) from None
        if value in seeds:
            raise ConfigError(f"--seeds {text!r}: seed {value} is given twice; each seed must be distinct")
        seeds.append(value)
    return seeds
