"""fedlab's Flower ClientApp: one client = one (part of a) data domain.

The run's configuration arrives once, in the run config (`fedlab.wire.keys.RUN_CONFIG`, or
the flat ``[tool.flwr.app.config]`` keys of a deployment); each message carries only what
changes (round, target, the strategy's client mode). In simulation ``partition-id`` in the node
config selects the client's partition of the federation; a deployed SuperNode names its own
data (`clients.local_data`). The train handler runs the strategy's local objective
(`fedlab.learn.training.train_local`); the evaluate handler scores the received global model on
the client's own held-out split.
"""

from __future__ import annotations

import contextvars
import functools
import warnings
from functools import lru_cache
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from clients.local_data import partition_for
from fedlab.config import SimulationConfig
from fedlab.core.seeding import client_seed
from fedlab.data import ClientPartition
from fedlab.federation.setup import model_norm
from fedlab.learn.models import DomainDiscriminator, DomainModel, build_model
from fedlab.learn.spec import local_spec
from fedlab.learn.threads import threads_for, use_threads
from fedlab.learn.training import LocalTrainSpec, accuracy_of, mean_loss, predict, resolve_device, train_local
from fedlab.wire import keys
from fedlab.wire.arrays import load_weights, record_state, state_record

DISCRIMINATOR_STATE = "fdann-discriminator"  # f-DANN's discriminator, kept in the node's state


def _context(msg: Message, context: Context) -> tuple[SimulationConfig, ClientPartition]:
    cfg = run_settings(context.run_config)
    target = str(msg.content[keys.CONFIG][keys.TARGET])
    node_config = dict(context.node_config)
    part = partition_for(cfg, target, node_config)
    if "partition-id" not in node_config:  # a deployed node: the simulation's thread count, hence
        # its exact arithmetic (simulation engines set theirs: `simulate`, the process workers)
        use_threads(threads_for(cfg.torch_threads, "image" if part.x_train.ndim == 4 else "vector"))
    return cfg, part


def run_settings(run_config: Any) -> SimulationConfig:
    """The run's `SimulationConfig` from the run config (validated once per process and run)."""
    flat = {**(_GIVEN_RUN_CONFIG.get() or {}), **dict(run_config)}
    if flat.get(keys.RUN_CONFIG):  # the whole config (simulation, `deploy local --config`)
        return _parse_config(str(flat[keys.RUN_CONFIG]))
    return _parse_flat(tuple(sorted((str(k), str(v)) for k, v in flat.items())))


@lru_cache(maxsize=8)
def _parse_config(text: str) -> SimulationConfig:
    return SimulationConfig.from_flat({keys.RUN_CONFIG: text})


@lru_cache(maxsize=8)
def _parse_flat(items: tuple[tuple[str, str], ...]) -> SimulationConfig:
    return SimulationConfig.from_flat(dict(items))


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
    key = (kind, tuple(part.x_train.shape[1:]), int(cfg_num_classes(msg)), model_norm(cfg.dp.enabled))
    model = None if cfg.dp.enabled else _MODELS.get(key)
    if model is None:
        model = build_model(kind, key[1], key[2], norm=key[3])
        if not cfg.dp.enabled:
            _MODELS[key] = model
    record = msg.content[keys.ARRAYS]
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
    """Number of classes of the run's federation, as the server sent it."""
    return int(msg.content[keys.CONFIG][keys.NUM_CLASSES])


def _info(part: ClientPartition) -> ConfigRecord:
    """Who answered: identity travels here, never among the metrics a strategy averages."""
    info: dict[str, Any] = {
        keys.CLIENT_ID: part.client_id,
        keys.CLIENT: f"{part.client_id}:{part.domain}",
        keys.DOMAIN: part.domain,
    }
    worker = _ray_node()
    if worker:
        info[keys.WORKER] = worker
    return ConfigRecord(info)


def _ray_node() -> str:
    """The Ray node this client runs on (engine "ray", possibly several machines), else ''."""
    import sys

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return ""
    return str(ray.get_runtime_context().get_node_id())


def train(msg: Message, context: Context) -> Message:
    """One round of local training with the strategy's objective (`keys.CLIENT_MODE`)."""
    cfg, part = _context(msg, context)
    config = msg.content[keys.CONFIG]
    device = resolve_device(cfg.device)
    model = _model_for(cfg, part, msg)
    server_round = int(config[keys.SERVER_ROUND])
    mode = str(config.get(keys.CLIENT_MODE, "ce"))
    mu = config.get(keys.PROXIMAL_MU)
    spec = local_spec(
        cfg.training, mode, len(part.y_train), server_round, None if mu is None else float(mu)  # type: ignore[arg-type]
    )
    extra: dict[str, float] = {}
    if config.get(keys.REPORT_INITIAL_LOSS):
        extra[keys.INITIAL_LOSS] = mean_loss(model, part.x_train, part.y_train, device)
    target_emb = target_predicted = None
    if keys.EMBEDDINGS in msg.content:
        sent = msg.content[keys.EMBEDDINGS].to_numpy_ndarrays()
        target_emb = sent[0]
        if len(sent) > 1:  # class-weighted matching (training.mmd_reweight): the rows' predicted classes
            target_predicted = sent[1]
    discriminator = None
    if mode == "dann":
        discriminator = DomainDiscriminator(model.embedding_dim)
        if DISCRIMINATOR_STATE in context.state:
            discriminator.load_state_dict(record_state(context.state[DISCRIMINATOR_STATE]))
    global_params = [p.detach().clone() for p in model.parameters()] if mode == "prox" else None
    seed = client_seed(cfg.seed, server_round, part.client_id)
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
        target_predicted=target_predicted,
    )
    if discriminator is not None:
        context.state[DISCRIMINATOR_STATE] = state_record(discriminator.cpu().state_dict())
    return _train_reply(
        msg, model, part, result.num_examples, result.loss, result.ce, result.align, result.alpha, **extra
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
            keys.NUM_EXAMPLES: num_examples,
            keys.TRAIN_LOSS: loss,
            keys.TRAIN_CE: ce,
            keys.TRAIN_ALIGN: align,
            keys.ALPHA: alpha,
            **extra,
        }
    )
    content = RecordDict(
        {keys.ARRAYS: state_record(model.state_dict()), keys.METRICS: metrics, keys.INFO: _info(part)}
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

    dp = client_dp_round(cfg.dp, cfg.training, model, len(part.y_train), context.state, global_params)
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
        **{
            keys.EPSILON: dp.spent,
            keys.DELTA: dp.plan.delta,
            keys.NOISE_MULTIPLIER: dp.plan.noise_multiplier,
            keys.SAMPLE_RATE: dp.plan.sample_rate,
            keys.DP_STEPS: sum(n for _, _, n in dp.history),
            keys.BUDGET_EXHAUSTED: int(exhausted),
        },
    )


def query(msg: Message, context: Context) -> Message:
    """Which client this node holds (the server's sampling handshake, `server.sampling`)."""
    _, part = _context(msg, context)
    return Message(content=RecordDict({keys.INFO: _info(part)}), reply_to=msg)


def evaluate(msg: Message, context: Context) -> Message:
    """The received global model on this client's own held-out split (+ group fairness counts)."""
    cfg, part = _context(msg, context)
    device = resolve_device(cfg.device)
    model = _model_for(cfg, part, msg, trains=False)
    protected = _protected(cfg, str(msg.content[keys.CONFIG][keys.TARGET]))
    fair = part.groups_test is not None and protected and cfg_num_classes(msg) == 2
    y_pred = predict(model, part.x_test, device)  # one pass for accuracy and fairness
    acc = accuracy_of(y_pred, part.y_test)
    metrics = MetricRecord({keys.NUM_EXAMPLES: len(part.y_test), keys.OWN_ACCURACY: acc})
    content = RecordDict({keys.METRICS: metrics, keys.INFO: _info(part)})
    if fair:
        from fedlab.metrics.fairness import client_payload

        payload = client_payload(part.y_test, y_pred, part.groups_test, protected)
        content[keys.FAIRNESS] = ConfigRecord({keys.FAIRNESS_JSON: payload})
    return Message(content=content, reply_to=msg)


def _protected(cfg: SimulationConfig, target: str) -> dict[str, str]:
    """Protected attributes and privileged values of the run's (tabular) federation."""
    if cfg.federation.name != "tabular":
        return {}
    from fedlab.federation.setup import setup_for

    return dict(setup_for(cfg, target).fed.protected)


# The run config given to `make_client_app`, for the handler being called (see `_with_run_config`).
_GIVEN_RUN_CONFIG: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "run_config", default=None
)


def _with_run_config(run_config: dict[str, Any], msg: Message, context: Context, call_next: Any) -> Message:
    """Flower mod: the run config for a runtime whose contexts come without one (Flower's own
    simulation runtime builds them from a FAB's pyproject, which a Python call has not, and
    a ClientApp may not modify ``context.run_config``)."""
    token = _GIVEN_RUN_CONFIG.set(run_config)
    try:
        return call_next(msg, context)
    finally:
        _GIVEN_RUN_CONFIG.reset(token)


def make_client_app(run_config: dict[str, Any] | None = None) -> ClientApp:
    """A ClientApp with fedlab's handlers; `run_config` (if given) fills contexts that lack it."""
    mods = [functools.partial(_with_run_config, dict(run_config))] if run_config else []
    client_app = ClientApp(mods=mods)
    client_app.train()(train)
    client_app.evaluate()(evaluate)
    client_app.query()(query)
    return client_app


# `flwr run` / deployments and fedlab's own runtime (whose contexts carry the run config)
app = make_client_app()
