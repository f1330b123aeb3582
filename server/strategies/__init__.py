"""fedlab's strategies: one file per strategy on a shared domain-aware base, built by name.

`resolve_strategy(name)` says what a name means (fedlab's, Flower's built-ins, an import path,
``BASE+fedka``), `check_dp` whether it keeps a DP mode's guarantee, `build_strategy` makes it.
"""

from server.strategies.domain import DomainAwareMixin
from server.strategies.registry import (
    StrategyPlan,
    available,
    build_strategy,
    check_dp,
    resolve_strategy,
)
from server.strategies.settings import StrategySettings

__all__ = [
    "DomainAwareMixin",
    "StrategyPlan",
    "StrategySettings",
    "available",
    "build_strategy",
    "check_dp",
    "resolve_strategy",
]
