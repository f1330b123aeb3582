"""Strategy registry: a name -> a configured, domain-aware Flower strategy.

Why one owner: the name list, each strategy's client objective and its DP compatibility used
to live in five places (config, server, clients, privacy, CLI). Now a strategy *declares* them
(`client_mode`, `dp_modes`, `settings_kwargs` on its class, `server.strategies.domain`) and
this module is the only place that maps names to classes. Adding a fedlab strategy is one file
in `server/strategies/` plus one line in `FEDLAB_STRATEGIES`.

Names a run accepts (`resolve_strategy`):

* fedlab's strategies: ``fedavg``, ``fedprox``, ``fdan``, ``fdann``, ``fedka``, ``fedka-ref`` (the
  reference notebook's voting rule), ``fedka-novote``;
* Flower's built-ins by short name (`server.strategies.flower`): ``fedadam``, ``fedyogi``,
  ``fedadagrad``, ``fedavgm``, ``fedmedian``, ``fedtrimmedavg``, ``krum``, ``multikrum``,
  ``bulyan``, ``qfedavg``;
* any Message-API strategy class by import path, ``package.module:Class`` (its module must be
  importable where the ServerApp runs);
* a base plus add-ons joined by ``+``: ``mmd`` (clients match their features to the target's:
  f-DAN's objective), ``vote`` (FedKA's voting step after aggregation), ``fedka`` (both). So
  ``fedadam+fedka`` is FedKA's matching and voting on top of FedAdam's aggregation.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from flwr.serverapp.strategy import Strategy

from fedlab.config import DPConfig
from fedlab.core.errors import ConfigError
from server.steps.voting import VotingStep
from server.strategies.domain import DomainAwareMixin, RoundCallback
from server.strategies.settings import StrategySettings
from server.target import TargetDomain

FEDLAB_STRATEGIES: dict[str, str] = {
    "fedavg": "server.strategies.fedavg:DomainFedAvg",
    "fedprox": "server.strategies.fedprox:DomainFedProx",
    "fdan": "server.strategies.fdan:FDAN",
    "fdann": "server.strategies.fdann:FDANN",
    "fedka": "server.strategies.fedka:FedKA",
    "fedka-ref": "server.strategies.fedka:FedKARef",  # the reference notebook's voting rule
    "fedka-novote": "server.strategies.fdan:FDAN",  # FedKA's ablation without voting (= f-DAN)
}
ADDONS = ("mmd", "vote", "fedka")
DP_WHY = {
    "client": "it would read un-noised client numbers or mix target rows into per-sample gradients",
    "central": "central DP's noise is calibrated for a plain average of clipped updates, and votes "
    "would come from the individual, un-noised client models",
}


def flower_strategies() -> dict[str, type]:
    """Flower's built-ins by short name (imported on first use)."""
    from server.strategies.flower import FLOWER_STRATEGIES

    return FLOWER_STRATEGIES


def available() -> list[str]:
    """Every short name `resolve_strategy` accepts (import paths and ``+`` add-ons aside)."""
    return [*FEDLAB_STRATEGIES, *flower_strategies()]


@dataclass(frozen=True)
class StrategyPlan:
    """A resolved strategy name: the class to build and what the clients must do."""

    name: str  # as the user wrote it: results are labelled with it
    cls: type
    mmd: bool = False
    vote: bool = False

    @property
    def client_mode(self) -> str:
        """The clients' local objective: 'mmd' when +mmd is added, else the class's."""
        return "mmd" if self.mmd else str(getattr(self.cls, "client_mode", "ce"))

    @property
    def dp_modes(self) -> tuple[str, ...]:
        """The DP modes the plan keeps: the class's, without central when +vote is added."""
        modes = tuple(getattr(self.cls, "dp_modes", ("client",)))
        return tuple(m for m in modes if m != "central") if self.vote else modes


def _import_class(ref: str) -> type:
    module, _, attr = ref.partition(":")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"strategy {ref!r}: cannot import {attr!r} from {module!r} ({exc})") from None
    if not (inspect.isclass(found) and issubclass(found, Strategy)):
        raise ConfigError(f"strategy {ref!r}: not a Flower Message-API Strategy class")
    return found


def _base_class(name: str) -> type:
    if name in FEDLAB_STRATEGIES:
        return _import_class(FEDLAB_STRATEGIES[name])
    if name in flower_strategies():
        return flower_strategies()[name]
    if ":" in name:
        cls = _import_class(name)
        if issubclass(cls, DomainAwareMixin):
            return cls
        return type(f"Domain{cls.__name__}", (DomainAwareMixin, cls), {"__module__": cls.__module__})
    raise ConfigError(
        f"unknown strategy {name!r}; expected one of {', '.join(available())}, "
        "an import path package.module:Class, or BASE+mmd / +vote / +fedka"
    )


def resolve_strategy(name: str) -> StrategyPlan:
    """`name` -> what to build; a one-line ConfigError naming the bad part otherwise."""
    base, *addons = [part.strip() for part in name.split("+")]
    bad = [a for a in addons if a not in ADDONS]
    if bad or not base:
        what = f"unknown add-on {bad[0]!r}" if bad else "no base strategy"
        raise ConfigError(f"strategy {name!r}: {what}; add-ons are {', '.join(ADDONS)}")
    cls = _base_class(base)
    mmd = any(a in ("mmd", "fedka") for a in addons)
    vote = any(a in ("vote", "fedka") for a in addons)
    if mmd and getattr(cls, "client_mode", "ce") != "ce":
        raise ConfigError(
            f"strategy {name!r}: +mmd needs a base whose clients train with plain cross-entropy "
            f"({base!r} uses {getattr(cls, 'client_mode', 'ce')!r})"
        )
    if vote and getattr(cls, "has_server_step", False):
        raise ConfigError(f"strategy {name!r}: {base!r} already has a server step")
    return StrategyPlan(name=name, cls=cls, mmd=mmd, vote=vote)


def check_dp(plan: StrategyPlan, dp: DPConfig) -> None:
    """Reject a DP mode the strategy cannot honour, in one line, before any data is loaded."""
    if dp.enabled and dp.mode not in plan.dp_modes:
        ok = [n for n in FEDLAB_STRATEGIES if dp.mode in resolve_strategy(n).dp_modes]
        raise ConfigError(
            f"dp: strategy {plan.name!r} is not supported in {dp.mode} DP mode ({DP_WHY[dp.mode]}); "
            f"use one of {', '.join(ok)}"
        )


def _constructor_kwargs(
    cls: type, wanted: dict[str, Any], options: dict[str, Any], name: str
) -> dict[str, Any]:
    """`wanted` + the user's `options`, limited to what the constructor takes (a non-FedAvg
    strategy has no node minimums); an option it does not take is an error, not silently dropped."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return {**wanted, **options}
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ConfigError(
            f"training.strategy_options: {name!r} takes no option {unknown[0]!r}; "
            f"it takes {', '.join(p for p in params if p not in ('self', 'args', 'kwargs'))}"
        )
    return {k: v for k, v in {**wanted, **options}.items() if k in params}


def build_strategy(
    plan: StrategyPlan,
    settings: StrategySettings,
    target: TargetDomain,
    on_round: RoundCallback | None = None,
) -> DomainAwareMixin:
    """The strategy of `plan`, constructed from the run settings, ready for `Strategy.start`."""
    cls = plan.cls
    wanted = {**settings.node_minimums(), **cls.settings_kwargs(settings)}
    try:
        strategy = cls(**_constructor_kwargs(cls, wanted, settings.options, plan.name))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"strategy {plan.name!r}: {exc}") from None
    t = settings.training
    if plan.mmd:
        strategy.embeddings_per_round = t.target_sample
        strategy.mmd_reweight = t.mmd_reweight
    if plan.vote:
        strategy.server_step = VotingStep.from_settings(t, settings.seed)
    strategy.setup_domain(target, on_round)
    strategy.setup_sampling(t.clients_per_round, t.eval_every, t.client_eval, settings.seed, t.rounds)
    return strategy
