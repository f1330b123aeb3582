"""``fedlab audit --protocol arcolezi2025`` as a library call: the paper's grid, its metrics,
``--compare``, ``--switches`` and the attribution table, written into one run directory.

The grid is formed from the options: ``--k`` (default the paper's 14 values), ``--models``
(default k,l,t; ``--k 1,10`` alone runs k-anonymity cells only), ``--l`` (default 2) and ``--t``
(default 0.45,0.5,0.55), each ℓ / t combined with every k; ``--seeds N`` runs seeds 0..N-1
(default 40). Cells that fail at run time keep status != "ok" in the results; the command lists
them and exits 1. Options come as a dict keyed by the command's parameter names, as in
`audits.experiment.options`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from audits.experiment.options import floats, ints, names
from fedlab.core.errors import ConfigError, FedlabError

PROTOCOLS = ("arcolezi2025",)
# grid-TOML key -> CLI option name, for `protocol = "arcolezi2025"` in a --config file
TOML_KEYS = {
    "csv": "csv", "schema_path": "schema", "schema": "schema", "ks": "k", "ls": "l_values", "ts": "t",
    "models": "models", "n_jobs": "jobs", "jobs": "jobs", "classifier": "classifier",
    "hierarchy_gaps": "hierarchy_gaps", "protected_in_test": "protected_in_test", "encoding": "encoding",
    "compare": "compare", "suppression_limit": "suppression", "test_size": "test_size",
}  # fmt: skip


def from_toml(opts: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """CLI options completed from a grid TOML that names a protocol (explicit options win)."""
    if not data.get("protocol"):
        return opts
    out = dict(opts, protocol=str(data["protocol"]))
    for key, opt in TOML_KEYS.items():
        if key in data and out.get(opt) is None:
            value = data[key]
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            if opt in ("csv", "schema", "compare"):
                value = Path(value)
            out[opt] = value
    if "seeds" in data and not out.get("seeds"):
        seeds = data["seeds"]
        out["seeds"] = [int(s) for s in seeds] if isinstance(seeds, list) else int(seeds)
    return out


@dataclass
class ProtocolRun:
    """A finished protocol run: where it was written and what the command reports from it."""

    out: Path
    results: pd.DataFrame
    info: dict[str, Any]
    seconds: float
    compare: pd.DataFrame | None  # fedlab vs the published results (``--compare``)
    trend: pd.DataFrame | None = None  # per cell and metric over seeds (trend.csv)


def run_protocol(opts: dict[str, Any]) -> ProtocolRun:
    """Run the protocol grid from the options and write the run directory (input errors first)."""
    from audits.anonymity.feasibility import check_privacy_feasible
    from audits.reproductions.arcolezi2025.cells import ProtocolSettings
    from audits.reproductions.arcolezi2025.grid_run import PaperGrid, prepare, run_grid, timed, write_run
    from fedlab.core.rundir import default_run_name

    if opts["protocol"] not in PROTOCOLS:
        raise ConfigError(
            f"--protocol: unknown protocol {opts['protocol']!r}; expected {', '.join(PROTOCOLS)}"
        )
    if opts["schema"] is None:
        raise ConfigError(
            "--protocol arcolezi2025 needs --schema (audits/datasets/data/compas_arcolezi2025.toml "
            "with --csv, or audits/datasets/data/adult_arcolezi2025.toml)"
        )
    settings = ProtocolSettings(
        protected_in_test=opts.get("protected_in_test") or "raw",
        encoding=opts.get("encoding") or "label",
        classifier=(opts["classifier"] or "xgboost"),
        hierarchy_gaps=opts.get("hierarchy_gaps") or "error",
        suppression_limit=0.2 if opts["suppression"] is None else opts["suppression"],
        test_size=0.2 if opts["test_size"] is None else opts["test_size"],
    )
    for field, allowed in (("protected_in_test", ("raw", "generalized")), ("encoding", ("label", "onehot")),
                           ("hierarchy_gaps", ("error", "repair", "paper"))):  # fmt: skip
        if getattr(settings, field) not in allowed:
            raise ConfigError(f"--{field.replace('_', '-')}: expected one of {', '.join(allowed)}")
    ks = ints(opts["k"], "--k")
    families = names(opts["models"]) or (
        ["k"] if ks is not None and opts["l_values"] is None and opts["t"] is None else ["k", "l", "t"]
    )
    grid = PaperGrid(families=families)
    if ks is not None:
        grid.ks = sorted(set(ks))
    if opts["l_values"] is not None:
        grid.ls = ints(opts["l_values"], "--l")
    if opts["t"] is not None:
        grid.ts = floats(opts["t"], "--t")
    if opts["seeds"]:  # --seeds N = 0..N-1; a TOML list is taken as is
        seeds = opts["seeds"]
        grid.seeds = [int(s) for s in seeds] if isinstance(seeds, list) else list(range(seeds))
    grid.jobs = 1 if opts["jobs"] is None else opts["jobs"]
    if any(k < 1 for k in grid.ks) or any(not 0 < t < 1 for t in grid.ts) or any(x < 2 for x in grid.ls):
        raise ConfigError("--k must be >= 1, --l >= 2 and --t strictly between 0 and 1")
    published = None
    if opts.get("compare") is not None:
        from audits.reproductions.arcolezi2025.compare import read_published

        published = read_published(opts["compare"])
    out = opts["out"] or Path("runs") / default_run_name("audit")
    if out.exists() and any(out.iterdir()):
        raise FedlabError(f"run directory {out} already exists and is not empty; choose another --out")
    data, info = prepare(opts["csv"], opts["schema"], settings)  # input errors: before any cell runs
    ls = grid.ls if "l" in grid.families and any(k > 1 for k in grid.ks) else []  # k = 1: untouched
    check_privacy_feasible(data.frame, [data.target], ls, grid.ts, f"{info['csv']} (target binarized)")
    results, seconds = timed(lambda: run_grid(data, grid, settings))
    extra = {}
    table = None
    if published is not None:
        from audits.reproductions.arcolezi2025.compare import compare

        table = compare(results, published)
        extra["compare.csv"] = table.to_csv(index=False)
    if opts.get("switches"):
        from audits.reproductions.arcolezi2025.switches import run_switches, switch_table

        ks = [k for k in grid.ks if k > 1] or [1]
        extra["switches.csv"] = switch_table(run_switches(data, settings, ks, grid.seeds, grid.jobs)).to_csv(
            index=False
        )
    from audits.reproductions.arcolezi2025.attribution import attribution_table
    from audits.reproductions.arcolezi2025.trend import trend_table

    extra["attribution.csv"] = attribution_table(results).to_csv(index=False)
    trend = trend_table(results)
    extra["trend.csv"] = trend.to_csv(index=False)
    write_run(out, results, info, grid, settings, seconds, extra)
    return ProtocolRun(out, results, info, seconds, table, trend)
