"""The run configuration: validated settings (pydantic), TOML loading with one-line errors, presets.

`load_simulation_config(path, overrides)` is how every entry point builds a `SimulationConfig`;
each layer below then takes only the section it uses (`FederationConfig` for data,
`TrainingConfig` for local training, `DPConfig` for privacy).
"""

from fedlab.config.load import format_validation_error, load_simulation_config
from fedlab.config.presets import PROTOCOLS, apply_protocol
from fedlab.config.settings import (
    FEDERATIONS,
    AnonymizeConfig,
    DPConfig,
    FederationConfig,
    SimulationConfig,
    TrainingConfig,
    parse_anonymize_spec,
)

__all__ = [
    "FEDERATIONS",
    "PROTOCOLS",
    "AnonymizeConfig",
    "DPConfig",
    "FederationConfig",
    "SimulationConfig",
    "TrainingConfig",
    "apply_protocol",
    "format_validation_error",
    "load_simulation_config",
    "parse_anonymize_spec",
]
