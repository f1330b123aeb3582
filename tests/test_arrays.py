"""The fast weights <-> ArrayRecord path gives exactly what Flower's own conversion gives.

`fedlab.wire.arrays` caches the ``.npy`` header work, `server.weighted_average` averages decoded
replies: the bytes, arrays and averages must be bitwise the ones Flower produces, or the
simulation's numbers would change with the speed-up.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg

from fedlab.config import load_simulation_config
from fedlab.federation.setup import setup_for
from fedlab.learn.models import build_model
from fedlab.runtime.flower_compat import set_task_identity
from fedlab.wire.arrays import decode, encode, load_weights, record_numpy, record_state, state_record
from server.strategies.domain import DomainAwareMixin
from server.strategies.fedavg import DomainFedAvg
from server.strategies.fedprox import DomainFedProx
from server.weighted_average import WeightedAverage, consistent

RNG = np.random.default_rng(0)
ARRAYS = [
    RNG.standard_normal((7, 5)).astype(np.float32),
    RNG.standard_normal(3),
    np.array(12, dtype=np.int64),
    RNG.integers(0, 255, (2, 3, 4), dtype=np.uint8),
    RNG.standard_normal((4, 2)).astype(">f4"),
    np.array([True, False, True]),
    np.zeros((0, 3), dtype=np.float32),
    np.asfortranarray(RNG.standard_normal((3, 4))),  # off the fast path: Flower's own encoding
    RNG.standard_normal((6, 6))[::2, ::3],  # not contiguous: likewise
    np.array([1 + 2j, 3j]),  # complex: likewise
]


def _fields(a: Array) -> tuple:
    return a.dtype, tuple(a.shape), a.stype, a.data


@pytest.mark.parametrize("arr", ARRAYS, ids=lambda a: f"{a.dtype}{a.shape}")
def test_encode_decode_match_flower_bitwise(arr: np.ndarray) -> None:
    for _ in range(2):  # the second time from the cached header
        assert _fields(encode(arr)) == _fields(Array(arr))
        flower = Array(arr)
        ours, theirs = decode(flower), flower.numpy()
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape and ours.flags.writeable
        assert ours.tobytes() == theirs.tobytes()


def test_state_dict_round_trip_matches_flower() -> None:
    torch.manual_seed(0)
    for model in (build_model("vector", (11,), 2), build_model("image", (3, 28, 28), 10)):
        state = model.state_dict()
        ours, theirs = state_record(state), ArrayRecord(state)
        assert list(ours.keys()) == list(theirs.keys())
        assert all(_fields(ours[k]) == _fields(theirs[k]) for k in theirs)
        back, flower = record_state(theirs), theirs.to_torch_state_dict()
        assert list(back) == list(flower)
        assert all(torch.equal(back[k], flower[k]) and back[k].dtype == flower[k].dtype for k in flower)


def _reply(seed: int, n: int) -> Message:
    set_task_identity(1)  # messages take their run id from it, as in a run
    torch.manual_seed(seed)
    model = build_model("vector", (9,), 2)
    model.extractor[1].num_batches_tracked += seed  # an integer buffer, averaged as Flower does
    content = RecordDict(
        {"arrays": ArrayRecord(model.state_dict()), "metrics": MetricRecord({"num-examples": n, "x": 1.0})}
    )
    return Message(content=content, dst_node_id=seed + 1, message_type="train")


def test_weighted_average_is_flowers_fedavg_bitwise() -> None:
    replies = [_reply(s, n) for s, n in ((0, 37), (1, 5), (2, 120), (3, 1))]
    average = WeightedAverage([r.content["metrics"]["num-examples"] for r in replies])
    for r in replies:
        average.add(record_numpy(r.content["arrays"]))
    ours, (theirs, _) = average.record(), FedAvg().aggregate_train(1, replies)
    assert list(ours.keys()) == list(theirs.keys())
    assert all(_fields(ours[k]) == _fields(theirs[k]) for k in theirs)
    assert consistent(replies, "num-examples") and not consistent(replies, "weight")


def test_inconsistent_replies_and_other_strategies_keep_flowers_aggregation() -> None:
    class OwnAverage(FedAvg):  # a strategy that aggregates its own way
        def aggregate_train(self, server_round, replies):  # type: ignore[no-untyped-def]
            return super().aggregate_train(server_round, replies)

    class DomainOwnAverage(DomainAwareMixin, OwnAverage):
        pass

    good, bad = [_reply(0, 3), _reply(1, 4)], [_reply(0, 3), _reply(1, 4)]
    del bad[1].content["arrays"]["classifier.bias"]
    for cls, replies, fast in (
        (DomainFedAvg, good, True),
        (DomainFedProx, good, True),  # FedProx averages with FedAvg's aggregate_train
        (DomainFedAvg, bad, False),  # Flower's FedAvg reports the problem its own way
        (DomainOwnAverage, good, False),
    ):
        strategy = cls()
        strategy._round = {"clients_failed": 0}
        assert (strategy._fedavg_average(replies) is not None) is fast, cls.__name__


def test_setup_is_shared_whether_or_not_the_target_is_written_in_the_config() -> None:
    cfg = load_simulation_config(None, {"federation.clients_per_domain": 2, "federation.max_per_domain": 60})
    setup = setup_for(cfg)
    resolved = cfg.model_copy(deep=True)
    resolved.training.target = setup.target  # what `simulate` hands the ServerApp and ClientApps
    assert setup_for(resolved) is setup and setup_for(cfg, setup.target) is setup


def test_load_weights_equals_load_state_dict() -> None:
    torch.manual_seed(1)
    source, ours, theirs = (build_model("image", (3, 28, 28), 10) for _ in range(3))
    state = record_state(ArrayRecord(source.state_dict()))
    state["extractor.0.1.num_batches_tracked"] = state["extractor.0.1.num_batches_tracked"].double()
    load_weights(ours, state)
    theirs.load_state_dict(state)
    for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b) and a.dtype == b.dtype, k
    with pytest.raises(RuntimeError, match="Missing key"):  # a partial state: load_state_dict's error
        load_weights(ours, {k: v for k, v in state.items() if "classifier" not in k})
