"""fedlab's Flower ClientApp: one client = one (part of a) data domain.

The server sends the full run config with every message, so a client needs nothing
but its node config: in simulation ``partition-id`` selects its partition of the
federation. The train handler runs the strategy's local objective (see
`fedlab.learn.training.train_local`); the evaluate handler scores the received global model
on the client's own held-out split.
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from clients.local_data import partition_for
from fedlab.config.settings import SimulationConfig
from fedlab.data import ClientPartition
from fedlab.federation.setup import model_norm
from fedlab.learn.models import DomainDiscriminator, DomainModel, build_model
from fedlab.learn.training import (
    LocalTrainSpec,
    accuracy_of,
    capped_steps,
    predict,
    resolve_device,
    train_local,
)
from fedlab.wire.arrays import load_weights, record_state, state_record

CONFIG_KEY = "fedlab-config"
EMBEDDINGS_KEY = "target-embeddings"
FAIRNESS_KEY = "fairness"
DISCRIMINATOR_STATE = "fdann-discriminator"
MODE_BY_STRATEGY = {
    "fedavg": "ce",
    "fedprox": "prox",
    "fdan": "mmd",
    "fdann": "dann",
    "fedka": "mmd",
    "fedka-novote": "mmd",
}

app = ClientApp()


def _context(msg: Message, context: Context) -> tuple[SimulationConfig, ClientPartition]:
    config = msg.content["config"]
    cfg = _parse_config(str(config[CONFIG_KEY]))
    return cfg, partition_for(cfg, str(config["target"]), dict(context.node_config))


@lru_cache(maxsize=8)
def _parse_config(text: str) -> SimulationConfig:
    """Every message of a run carries the same config: validate it once per process, not per message."""
    return SimulationConfig.model_validate(json.loads(text))


def _model_for(
    cfg: SimulationConfig, part: ClientPartition, msg: Message, trains: bool = True
) -> DomainModel:
    """The model architecture follows the data (image vs vector), weights from the server.

    Why the caches: one simulation process serves many clients. The global weights of a round
    are one ArrayRecord object shared by all its messages, so they are decoded once, not once
    per client; and one model per architecture is reused (every parameter and buffer is
    overwritten by `load_weights`, gradients cleared) instead of being built and randomly
    initialised per message. A model that only evaluated (`trains=False`: eval mode, no
    gradient step, so nothing in it changed) still holds the weights it was given, so the next
    evaluation of the same record skips reloading them. Under DP a fresh model is built
    (Opacus attaches hooks to it)."""
    kind = "image" if part.x_train.ndim == 4 else "vector"
    key = (kind, tuple(part.x_train.shape[1:]), int(cfg_num_classes(msg)), model_norm(cfg))
    model = None if cfg.dp.enabled else _MODELS.get(key)
    if model is None:
        model = build_model(kind, key[1], key[2], norm=key[3])
        if not cfg.dp.enabled:
            _MODELS[key] = model
    record = msg.content["arrays"]
    if trains or _HOLDS.get(key) is not record:
        load_weights(model, _global_state(record))
        for param in model.parameters():
            param.grad = None
    _HOLDS[key] = None if trains or cfg.dp.enabled else record
    return model


_MODELS: dict[tuple, DomainModel] = {}
_HOLDS: dict[tuple, ArrayRecord | None] = {}  # model key -> the record its weights equal (evaluation only)
_STATE: list = [None, None]  # [ArrayRecord, its decoded state dict]


def _global_state(record: ArrayRecord) -> dict:
    if _STATE[0] is not record:
        _STATE[0], _STATE[1] = record, record_state(record)
    return _STATE[1]


def cfg_num_classes(msg: Message) -> int:
    return int(msg.content["config"]["num-classes"])


def _info(part: ClientPartition) -> ConfigRecord:
    info = {"client": f"{part.client_id}:{part.domain}", "domain": part.domain}
    worker = _ray_node()
    if worker:
        info["worker"] = worker
    return ConfigRecord(info)


def _ray_node() -> str:
    """The Ray node this client runs on (engine "ray", possibly several machines), else ''."""
    import sys

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return ""
    return str(ray.get_runtime_context().get_node_id())


@app.train()
def train(msg: Message, context: Context) -> Message:
    cfg, part = _context(msg, context)
    config = msg.content["config"]
    device = resolve_device(cfg.device)
    model = _model_for(cfg, part, msg)
    server_round = int(config["server-round"])
    rounds = cfg.training.rounds
    t = cfg.training
    mode = MODE_BY_STRATEGY[t.strategy]
    spec = LocalTrainSpec(
        mode=mode,  # type: ignore[arg-type]
        steps=capped_steps(t.local_steps, len(part.y_train), t.batch_size, t.max_epochs_per_round),
        batch_size=t.batch_size,
        lr=t.lr,
        momentum=t.momentum,
        weight_decay=t.weight_decay,
        proximal_mu=float(config.get("proximal-mu", t.proximal_mu)),
        mmd_weight=t.mmd_weight,
        optimizer=t.optimizer,
        progress_start=(server_round - 1) / rounds,
        progress_end=server_round / rounds,
    )
    target_emb = None
    if EMBEDDINGS_KEY in msg.content:
        target_emb = msg.content[EMBEDDINGS_KEY].to_numpy_ndarrays()[0]
    discriminator = None
    if mode == "dann":
        discriminator = DomainDiscriminator(model.embedding_dim)
        if DISCRIMINATOR_STATE in context.state:
            discriminator.load_state_dict(record_state(context.state[DISCRIMINATOR_STATE]))
    global_params = [p.detach().clone() for p in model.parameters()] if mode == "prox" else None
    seed = int(np.random.SeedSequence([cfg.seed, server_round, part.client_id]).generate_state(1)[0])
    if cfg.dp.enabled and cfg.dp.mode == "client":
        return _train_private(msg, context, cfg, part, model, spec, device, seed, target_emb, global_params)
    result = train_local(
        model,
        part.x_train,
        part.y_train,
        spec,
        device,
        seed=seed,
        target_embeddings=target_emb,
        global_params=global_params,
        discriminator=discriminator,
    )
    if discriminator is not None:
        context.state[DISCRIMINATOR_STATE] = state_record(discriminator.cpu().state_dict())
    return _train_reply(
        msg, model, part, result.num_examples, result.loss, result.ce, result.align, result.alpha
    )


def _train_reply(
    msg: Message,
    model: DomainModel,
    part: ClientPartition,
    num_examples: int,
    loss: float,
    ce: float,
    align: float,
    alpha: float,
    **extra: float,
) -> Message:
    """The train reply every strategy aggregates: weights, one MetricRecord, client info."""
    metrics = MetricRecord(
        {
            "num-examples": num_examples,
            "train-loss": loss,
            "train-ce": ce,
            "train-align": align,
            "alpha": alpha,
            "client-id": part.client_id,
            **extra,
        }
    )
    content = RecordDict(
        {"arrays": state_record(model.state_dict()), "metrics": metrics, "info": _info(part)}
    )
    return Message(content=content, reply_to=msg)


def _train_private(
    msg: Message,
    context: Context,
    cfg: SimulationConfig,
    part: ClientPartition,
    model: DomainModel,
    spec: LocalTrainSpec,
    device,
    seed: int,
    target_emb: np.ndarray | None,
    global_params: list | None,
) -> Message:
    """DP-SGD round (`fedlab.learn.privacy`): Opacus optimizer, Poisson batches, ε kept in state."""
    from fedlab.learn.privacy import client_dp_round, save_history

    dp = client_dp_round(cfg, model, len(part.y_train), context.state, global_params)
    exhausted = dp.would_exceed_budget()
    nan = float("nan")
    loss = ce = align = alpha = nan
    if not exhausted:
        spec.proximal_mu = 0.0  # FedProx's term is added after privatization (ProxSGD)
        with warnings.catch_warnings():
            # Opacus: "secure RNG off" (fine for research) and a full-backward-hook note on inputs
            warnings.simplefilter("ignore", UserWarning)
            result = train_local(
                model,
                part.x_train,
                part.y_train,
                spec,
                device,
                seed=seed,
                target_embeddings=target_emb,
                optimizer_factory=dp.optimizer_factory,
                batch_sampler=dp,
            )
        save_history(context.state, dp.finish())
        loss, ce, align, alpha = result.loss, result.ce, result.align, result.alpha
    # exhausted: the weights received, untouched (the server leaves this reply out of the average)
    return _train_reply(
        msg,
        model,
        part,
        len(part.y_train),
        loss,
        ce,
        align,
        alpha,
        epsilon=dp.spent,
        delta=dp.plan.delta,
        **{
            "noise-multiplier": dp.plan.noise_multiplier,
            "sample-rate": dp.plan.sample_rate,
            "dp-steps": sum(n for _, _, n in dp.history),
            "budget-exhausted": int(exhausted),
        },
    )


@app.query()
def query(msg: Message, context: Context) -> Message:
    """Which client this node holds (the server's sampling handshake, `server.sampling`)."""
    _, part = _context(msg, context)
    info = ConfigRecord({"client-id": part.client_id, "client": f"{part.client_id}:{part.domain}"})
    return Message(content=RecordDict({"info": info}), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    cfg, part = _context(msg, context)
    device = resolve_device(cfg.device)
    model = _model_for(cfg, part, msg, trains=False)
    protected = _protected(cfg, str(msg.content["config"]["target"]))
    fair = part.groups_test is not None and protected and cfg_num_classes(msg) == 2
    y_pred = predict(model, part.x_test, device)  # one pass for accuracy and fairness
    acc = accuracy_of(y_pred, part.y_test)
    metrics = MetricRecord(
        {"num-examples": len(part.y_test), "own-accuracy": acc, "client-id": part.client_id}
    )
    content = RecordDict({"metrics": metrics, "info": _info(part)})
    if fair:
        from fedlab.metrics.fairness import client_payload

        payload = client_payload(part.y_test, y_pred, part.groups_test, protected)
        content[FAIRNESS_KEY] = ConfigRecord({"json": payload})
    return Message(content=content, reply_to=msg)


def _protected(cfg: SimulationConfig, target: str) -> dict[str, str]:
    """Protected attributes and privileged values of the run's (tabular) federation."""
    if cfg.federation.name != "tabular":
        return {}
    from fedlab.federation.setup import setup_for

    return dict(setup_for(cfg, target).fed.protected)
