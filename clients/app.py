"""fedlab's Flower ClientApp: one client = one (part of a) data domain.

The server sends the full run config with every message, so a client needs nothing
but its node config: in simulation ``partition-id`` selects its partition of the
federation. The train handler runs the strategy's local objective (see
`fedlab.training.train_local`); the evaluate handler scores the received global model
on the client's own held-out split.
"""

from __future__ import annotations

import json

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from clients.local_data import partition_for
from fedlab.config import SimulationConfig
from fedlab.data import ClientPartition
from fedlab.models import DomainDiscriminator, DomainModel, build_model
from fedlab.training import LocalTrainSpec, accuracy, resolve_device, train_local

CONFIG_KEY = "fedlab-config"
EMBEDDINGS_KEY = "target-embeddings"
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
    cfg = SimulationConfig.model_validate(json.loads(str(config[CONFIG_KEY])))
    return cfg, partition_for(cfg, str(config["target"]), dict(context.node_config))


def _model_for(cfg: SimulationConfig, part: ClientPartition, msg: Message) -> DomainModel:
    """The model architecture follows the data (image vs vector), weights from the server."""
    kind = "image" if part.x_train.ndim == 4 else "vector"
    model = build_model(kind, part.x_train.shape[1:], int(cfg_num_classes(msg)))
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    return model


def cfg_num_classes(msg: Message) -> int:
    return int(msg.content["config"]["num-classes"])


def _info(part: ClientPartition) -> ConfigRecord:
    return ConfigRecord({"client": f"{part.client_id}:{part.domain}", "domain": part.domain})


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
        steps=t.local_steps,
        batch_size=t.batch_size,
        lr=t.lr,
        momentum=t.momentum,
        weight_decay=t.weight_decay,
        proximal_mu=float(config.get("proximal-mu", t.proximal_mu)),
        mmd_weight=t.mmd_weight,
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
            discriminator.load_state_dict(context.state[DISCRIMINATOR_STATE].to_torch_state_dict())
    global_params = [p.detach().clone() for p in model.parameters()] if mode == "prox" else None
    result = train_local(
        model,
        part.x_train,
        part.y_train,
        spec,
        device,
        seed=int(np.random.SeedSequence([cfg.seed, server_round, part.client_id]).generate_state(1)[0]),
        target_embeddings=target_emb,
        global_params=global_params,
        discriminator=discriminator,
    )
    if discriminator is not None:
        context.state[DISCRIMINATOR_STATE] = ArrayRecord(discriminator.cpu().state_dict())
    metrics = MetricRecord(
        {
            "num-examples": result.num_examples,
            "train-loss": result.loss,
            "train-ce": result.ce,
            "train-align": result.align,
            "alpha": result.alpha,
            "client-id": part.client_id,
        }
    )
    content = RecordDict(
        {"arrays": ArrayRecord(model.cpu().state_dict()), "metrics": metrics, "info": _info(part)}
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    cfg, part = _context(msg, context)
    device = resolve_device(cfg.device)
    model = _model_for(cfg, part, msg)
    acc = accuracy(model, part.x_test, part.y_test, device)
    metrics = MetricRecord(
        {"num-examples": len(part.y_test), "own-accuracy": acc, "client-id": part.client_id}
    )
    return Message(content=RecordDict({"metrics": metrics, "info": _info(part)}), reply_to=msg)
