"""What a run needs before any training: data, the target split, clients, a model factory.

Both the ServerApp and the ClientApp call `setup_for` with the same config, so they
agree on domains, client ids and model shape. The result is cached per process
(simulation actors serve many clients).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from fedlab.config import SimulationConfig
from fedlab.data import (
    ClientPartition,
    Domain,
    FederationData,
    load_federation,
    make_clients,
    prepare,
    resolve_target,
)
from fedlab.learn.models import DomainModel, build_model
from fedlab.learn.training import rows_needed_to_train


def model_norm(dp_enabled: bool) -> str:
    """Normalization layers of the run's model, decided in ONE place for server and clients.

    Under DP the model uses GroupNorm: BatchNorm mixes samples of a batch (Opacus rejects it) and
    its running statistics would be unclipped, unnoised functions of the data."""
    return "group" if dp_enabled else "batch"


@dataclass(frozen=True)
class FederationSetup:
    fed: FederationData  # model-ready (tabular: preprocessed for this target)
    target: str
    clients: tuple[ClientPartition, ...]
    norm: str = "batch"
    anonymization: tuple[dict, ...] = ()  # per-client report when clients anonymize locally

    def new_model(self) -> DomainModel:
        return build_model(self.fed.kind, self.input_shape, self.fed.num_classes, norm=self.norm)

    def clients_too_small(self) -> dict[str, tuple[int, int]]:
        """domain -> (clients too small to take a training step, clients), only domains that have
        some (`rows_needed_to_train`). They fail whenever they are sampled; many clients on a small
        domain get there (Adult by race at N = 1,000)."""
        need = rows_needed_to_train(self.new_model())
        out: dict[str, tuple[int, int]] = {}
        for c in self.clients:
            small, total = out.get(c.domain, (0, 0))
            out[c.domain] = (small + (c.num_train < need), total + 1)
        return {d: v for d, v in out.items() if v[0]}

    @property
    def target_domain(self) -> Domain:
        return self.fed.domains[self.target]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.target_domain.x_test.shape[1:])


@lru_cache(maxsize=8)
def _setup_cached(config_json: str, target: str) -> FederationSetup:
    cfg = SimulationConfig.model_validate_json(config_json)
    fed = load_federation(cfg.federation, cfg.seed)
    target = resolve_target(fed, target)
    if cfg.anonymize.spec:
        from fedlab.federation.anonymize import anonymize_federation

        anon = anonymize_federation(fed, target, cfg)
        return FederationSetup(
            fed=anon.ready,
            target=target,
            clients=tuple(anon.clients),
            norm=model_norm(cfg.dp.enabled),
            anonymization=tuple(a.report for a in anon.anonymized),
        )
    ready = prepare(fed, target)
    clients = tuple(make_clients(fed, target, cfg.federation, cfg.seed))
    return FederationSetup(fed=ready, target=target, clients=clients, norm=model_norm(cfg.dp.enabled))


def setup_for(cfg: SimulationConfig, target: str | None = None) -> FederationSetup:
    """Data and clients for `cfg` (target defaults to the config's, then the federation's)."""
    return _setup_for_json(cfg.model_dump_json(), target if target is not None else cfg.training.target)


@lru_cache(maxsize=8)
def _setup_for_json(config_json: str, target: str) -> FederationSetup:
    """One setup per (config, resolved target), however the target was given.

    `simulate` looks the setup up before it writes the resolved target into the config, the
    ServerApp and the ClientApps after: keyed on the raw config the two would build the same
    clients twice (at 1,000 clients a second or more). The setup is keyed on the config with
    the target left out plus the target name the federation resolves it to."""
    cfg = SimulationConfig.model_validate_json(config_json)
    name = resolve_target(load_federation(cfg.federation, cfg.seed), target)
    untargeted = cfg.model_copy(update={"training": cfg.training.model_copy(update={"target": ""})})
    return _setup_cached(untargeted.model_dump_json(), name)
