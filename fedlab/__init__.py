"""fedlab: federated-learning and privacy/fairness simulation platform — the library's front door.

Everything the command line does is one call here (the CLI is a thin layer over these)::

    import fedlab

    cfg = fedlab.load_config("run.toml", {"training.strategy": "fedadam+fedka"})
    result = fedlab.simulate(cfg)                        # one run -> run directory + summary
    fedlab.run_sweep(cfg, targets, strategies, seeds, out)  # paired comparison over seeds
    fedlab.run_study(cfg, cells, out)                    # privacy x anonymization x strategy
    fedlab.run_audit(grid)                               # k / l / t vs fairness on one table
    fedlab.write_report(run_dir, "html")                 # any run directory -> a report

    fedlab.strategies()                                  # names `training.strategy` accepts

Why lazy: `import fedlab` must stay cheap and torch-free (the audit runs without torch, and
`fedlab.core` is imported by `audits`); each name is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute)
_EXPORTS: dict[str, tuple[str, str]] = {
    "SimulationConfig": ("fedlab.config", "SimulationConfig"),
    "load_config": ("fedlab.config", "load_simulation_config"),
    "simulate": ("fedlab.runs.simulate", "simulate"),
    "SimulationResult": ("fedlab.runs.simulate", "SimulationResult"),
    "run_sweep": ("fedlab.runs.sweep", "run_sweep"),
    "run_study": ("fedlab.runs.study", "run_study"),
    "run_audit": ("audits.experiment.run", "run_audit"),
    "build_report": ("fedlab.report", "build_report"),
    "write_report": ("fedlab.report", "write_report"),
    "strategies": ("server.strategies", "available"),
    "resolve_strategy": ("server.strategies", "resolve_strategy"),
    "compare": ("fedlab.metrics.comparison", "compare"),
    "FedlabError": ("fedlab.core.errors", "FedlabError"),
    "ConfigError": ("fedlab.core.errors", "ConfigError"),
    "DataError": ("fedlab.core.errors", "DataError"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a front-door name on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fedlab' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
