"""Loading the run configuration: TOML file + CLI overrides + a paper preset -> `SimulationConfig`.

Why a module of its own: precedence (defaults < preset < TOML < flags) and the one-line error
that names the flag or the TOML key are the contract every entry point (simulate, study,
sweep, bench) relies on; the settings themselves stay free of file handling.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fedlab.config.presets import apply_protocol
from fedlab.config.settings import SimulationConfig
from fedlab.core.errors import ConfigError


def format_validation_error(exc: ValidationError, source: str, flags: dict[str, str] | None = None) -> str:
    """One line: where, which field, what was wrong (a CLI value is named by its flag)."""
    parts, by_flag = [], []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        flag = next((f for key, f in (flags or {}).items() if loc == key or loc.startswith(key + ".")), None)
        if flag:
            by_flag.append(f"{flag}: {msg} (got {err.get('input')!r})")
        else:
            parts.append(f"{loc}: {msg} (got {err.get('input')!r})")
    text = "; ".join(by_flag)
    if parts:
        text += ("; " if text else "") + f"{source}: invalid config: " + "; ".join(parts)
    return text


def load_simulation_config(
    path: str | Path | None, overrides: dict[str, Any] | None = None, flags: dict[str, str] | None = None
) -> SimulationConfig:
    """Read TOML (if given), apply dotted overrides like ``{"training.rounds": 3}``, validate.

    `flags` maps override keys to the CLI flags that set them, so errors name the flag."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"config file {p} not found")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{p}: not a text file (byte {exc.start} is not UTF-8); expected a TOML config"
            ) from exc
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read ({exc.strerror or type(exc).__name__})") from exc
        for key in ("schema", "schema_file"):
            schema = (data.get("federation") or {}).get(key)
            if isinstance(schema, str) and schema and not Path(schema).expanduser().is_absolute():
                # a schema named in a config file lives next to it, wherever fedlab is started
                data["federation"][key] = str(p.resolve().parent / schema)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    data = apply_protocol(data)
    try:
        return SimulationConfig.model_validate(data)
    except ValidationError as exc:
        given = {k: f for k, f in (flags or {}).items() if (overrides or {}).get(k) is not None}
        raise ConfigError(format_validation_error(exc, source, given)) from exc
