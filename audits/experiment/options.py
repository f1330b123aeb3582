"""The audit grid from `fedlab audit`'s options: the quick default grid, a grid TOML with
explicit options on top, and the rules that decide which privacy-model families run.

How the grid is formed: ``--k`` alone (no ``--l``, ``--t``, ``--models`` or ``--config``) runs
k-anonymity cells only; otherwise ``--models`` picks the families, ℓ / t are crossed with
``--l-with-k`` / ``--t-with-k`` (default without ``--config``: k = 1, i.e. alone). With no
options: `QUICK_GRID`.
Options come as a dict keyed by the command's parameter names (``k``, ``l_values``, ``t``, ...;
None = not given); every bad value is a one-line `ConfigError` naming the option.
"""

from __future__ import annotations

from typing import Any

from audits.experiment.grid import AuditGrid, make_grid, read_grid_file
from fedlab.core.errors import ConfigError

# The no-argument grid: small enough for CI, still showing the privacy/fairness trend.
QUICK_GRID: dict[str, Any] = {
    "dataset": "adult",
    "models": ["k", "l", "t"],
    "ks": [1, 10, 100],
    "ls": [2],
    "l_ks": [1],
    "ts": [0.5],
    "t_ks": [1],
    "algorithms": ["optimal"],
    "classifiers": ["hgb"],
    "seeds": [0, 1],
    "n_jobs": 0,
}


def _numbers(text: str | None, option: str, cast: type, expected: str) -> list | None:
    if text is None:
        return None
    try:
        return [cast(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"{option} expects comma-separated {expected} (got {text!r})") from exc


def ints(text: str | None, option: str) -> list[int] | None:
    return _numbers(text, option, int, "integers like 1,10,100")


def floats(text: str | None, option: str) -> list[float] | None:
    return _numbers(text, option, float, "numbers like 0.45,0.5")


def names(text: str | None) -> list[str] | None:
    return None if text is None else [x.strip() for x in text.split(",") if x.strip()]


def grid_from_options(opts: dict[str, Any]) -> AuditGrid:
    """The validated `AuditGrid`: ``opts["config"]`` (or `QUICK_GRID`) with the given options on top."""
    data = read_grid_file(opts["config"]) if opts["config"] is not None else dict(QUICK_GRID)
    source = str(opts["config"]) if opts["config"] is not None else "audit options"
    overrides: dict[str, Any] = {
        "ks": ints(opts["k"], "--k"),
        "ls": ints(opts["l_values"], "--l"),
        "ts": floats(opts["t"], "--t"),
        "models": names(opts["models"]),
        "algorithms": names(opts["algorithm"]),
        "classifiers": names(opts["classifier"]),
        "seeds": list(range(opts["seeds"])) if opts["seeds"] else None,
        "suppression_limit": opts["suppression"],
        "test_size": opts["test_size"],
        "split_by": opts["split_by"],
        "max_rows": opts["max_rows"],
        "n_jobs": opts["jobs"],
        "schema_path": str(opts["schema"]) if opts["schema"] is not None else None,
        "min_group_size": opts.get("min_group_size"),
        "export": True if opts.get("export") else None,
    }
    data.update({key: value for key, value in overrides.items() if value is not None})
    if opts["csv"] is not None and opts["dataset"] is not None:
        raise ConfigError("give either --dataset or --csv, not both")
    if opts["csv"] is not None:
        data.update(csv=str(opts["csv"]), dataset="")
    if opts["dataset"] is not None:
        data.update(dataset=opts["dataset"], csv="")
    for key, option in (("l_ks", "l_with_k"), ("t_ks", "t_with_k")):
        text = opts[option]
        if text is not None:  # "all" -> None: cross with every k
            data[key] = None if text.strip().lower() == "all" else ints(text, "--" + option.replace("_", "-"))
    only_k = opts["k"] is not None and opts["config"] is None and opts["models"] is None
    if only_k and all(opts[o] is None for o in ("l_values", "t", "l_with_k", "t_with_k")):
        data["models"] = ["k"]  # `--k 1,10` alone: k-anonymity cells only
    return make_grid(data, source)
