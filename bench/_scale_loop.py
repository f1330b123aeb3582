"""The plain-Python reference for bench_scale.py: the same FedAvg work as `fedlab simulate`.

Every round: the same seeded client sample (`server.sampling`), each sampled client loads the
global weights and runs `train_local` with the simulation's per-client seed; the server scores
each returned model on the target test split (Group Effect) and averages the weights; in
evaluation rounds the evaluating clients score the global model on their own split (plus group
fairness on tabular federations) and the server scores the global model on the target.
No messages, records or runtime: what remains of the simulation's time on top is overhead.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import torch

from fedlab.core.seeding import client_seed
from fedlab.federation.setup import setup_for
from fedlab.learn.spec import local_spec
from fedlab.learn.training import accuracy, accuracy_of, predict, resolve_device, train_local
from fedlab.metrics.fairness import client_payload, fairness_by_attribute, pooled_fairness, read_payload
from fedlab.metrics.group_effect import group_effect
from server.sampling import is_eval_round, sample_clients


def plain_loop(cfg) -> dict[str, float]:
    """Run FedAvg as a loop; returns seconds per phase and the final target accuracy."""
    setup = setup_for(cfg)
    device = resolve_device(cfg.device)
    t = cfg.training
    target = setup.target_domain
    fair = setup.fed.protected if setup.fed.num_classes == 2 and target.groups_test is not None else {}
    phases: dict[str, float] = defaultdict(float)
    torch.manual_seed(cfg.seed)
    global_state = {k: v.clone() for k, v in setup.new_model().state_dict().items()}
    ids = [c.client_id for c in setup.clients]
    acc = float("nan")
    for rnd in range(1, t.rounds + 1):
        chosen = set(sample_clients(cfg.seed, rnd, ids, t.clients_per_round))
        evaluates = is_eval_round(rnd, t.eval_every, t.rounds)
        states, weights, names, client_acc = [], [], [], []
        for part in setup.clients:
            if part.client_id not in chosen:
                continue
            start = time.perf_counter()
            model = setup.new_model()
            model.load_state_dict(global_state)
            spec = local_spec(t, "ce", len(part.y_train), rnd)
            seed = client_seed(cfg.seed, rnd, part.client_id)
            try:
                res = train_local(model, part.x_train, part.y_train, spec, device, seed=seed)
            except ValueError:  # e.g. BatchNorm on a 1-row client: the simulation gets an error reply
                phases["failed clients"] += 1
                continue
            states.append({k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
            weights.append(res.num_examples)
            names.append(f"{part.client_id}:{part.domain}")
            phases["client training"] += time.perf_counter() - start
            if evaluates:
                start = time.perf_counter()
                client_acc.append(accuracy(model, target.x_test, target.y_test, device))
                phases["server evaluation"] += time.perf_counter() - start
        start = time.perf_counter()
        total = sum(weights)
        avg: dict[str, np.ndarray] = {}
        # summed in the simulation's order (replies sorted by client name): same float rounding
        order = sorted(range(len(names)), key=names.__getitem__)
        for state, n in ((states[i], weights[i]) for i in order):
            for k, v in state.items():
                avg[k] = v * (n / total) if k not in avg else avg[k] + v * (n / total)
        global_state = {k: torch.as_tensor(v).to(global_state[k].dtype) for k, v in avg.items()}
        phases["aggregation"] += time.perf_counter() - start
        if not evaluates:
            continue
        start = time.perf_counter()
        model = setup.new_model()
        model.load_state_dict(global_state)
        counts = []
        evaluating = [p for p in setup.clients if t.client_eval == "all" or p.client_id in chosen]
        for part in evaluating if t.client_eval != "none" else []:
            if len(part.y_test) == 0:  # the simulation's client replies with an error here
                continue
            if fair and part.groups_test is not None:  # one pass for accuracy and fairness
                y_pred = predict(model, part.x_test, device)
                accuracy_of(y_pred, part.y_test)
                counts += read_payload(client_payload(part.y_test, y_pred, part.groups_test, fair))["counts"]
            else:
                accuracy(model, part.x_test, part.y_test, device)
        phases["client evaluation"] += time.perf_counter() - start
        start = time.perf_counter()
        if counts:
            pooled_fairness(counts, fair)
        y_pred = predict(model, target.x_test, device)
        acc = accuracy_of(y_pred, target.y_test)
        if fair:
            fairness_by_attribute(target.y_test, y_pred, target.groups_test, fair)
        group_effect(acc, client_acc)
        phases["server evaluation"] += time.perf_counter() - start
    return {**phases, "final_target_acc": acc}
