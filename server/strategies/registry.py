"""Strategy registry: name -> configured Flower strategy with fedlab's target bookkeeping."""

from __future__ import annotations

from fedlab.config.settings import SimulationConfig
from fedlab.learn.training import LocalTrainSpec
from server.strategies.domain import DomainAwareMixin, RoundCallback
from server.strategies.fdan import FDAN
from server.strategies.fdann import FDANN
from server.strategies.fedavg import DomainFedAvg
from server.strategies.fedka import FedKA
from server.strategies.fedprox import DomainFedProx
from server.target import TargetDomain


def build_strategy(
    cfg: SimulationConfig, num_clients: int, target: TargetDomain, on_round: RoundCallback | None = None
) -> DomainAwareMixin:
    t = cfg.training
    min_train = max(1, round(num_clients * t.min_fit_clients_fraction))
    common = {
        "fraction_train": 1.0,
        "fraction_evaluate": 1.0,
        "min_train_nodes": min_train,
        "min_evaluate_nodes": min_train,
        "min_available_nodes": min_train,
    }
    name = t.strategy
    strategy: DomainAwareMixin
    if name == "fedavg":
        strategy = DomainFedAvg(**common)
    elif name == "fedprox":
        strategy = DomainFedProx(proximal_mu=t.proximal_mu, **common)
    elif name == "fdan":
        strategy = FDAN(embeddings_per_round=t.target_sample, **common)
    elif name == "fdann":
        strategy = FDANN(embeddings_per_round=t.target_sample, **common)
    else:  # fedka / fedka-novote (validated by the config)
        strategy = FedKA(
            embeddings_per_round=t.target_sample,
            voting=name == "fedka",
            vote_agreement=t.vote_agreement,
            vote_rule=t.vote_rule,
            vote_warmup=t.vote_warmup,
            vote_select=t.vote_select,
            vote_target_batchnorm=t.vote_target_batchnorm,
            finetune_steps=t.finetune_steps,
            max_epochs_per_round=t.max_epochs_per_round,
            finetune_spec=LocalTrainSpec(
                batch_size=t.batch_size,
                lr=t.finetune_lr if t.finetune_lr is not None else t.lr,
                momentum=t.momentum,
                weight_decay=t.weight_decay,
                optimizer=t.optimizer,
            ),
            num_rounds=t.rounds,
            seed=cfg.seed,
            **common,
        )
    strategy.setup_domain(target, on_round)
    strategy.setup_sampling(t.clients_per_round, t.eval_every, t.client_eval, cfg.seed, t.rounds)
    return strategy
