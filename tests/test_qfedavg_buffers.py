"""q-FFL (Flower's QFedAvg) steps only the trained weights; BatchNorm buffers are averaged.

Flower's aggregation treats every array as a gradient step: BatchNorm's running statistics would
be scaled by 1/h and their change folded into the update norm h. fedlab's QFedAvg takes the
buffers out, runs Flower's step on the parameters, and puts back the example-weighted average.
"""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import QFedAvg

from fedlab.learn.models import build_model
from fedlab.runtime.flower_compat import set_task_identity
from fedlab.wire import keys
from server.strategies.flower import BufferAwareQFedAvg


def _state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = build_model("vector", (9,), 2)
    model.extractor[1].running_mean += seed  # clients' BatchNorm statistics differ
    model.extractor[1].num_batches_tracked += 3 + seed
    return model.state_dict()


def _reply(seed: int, n: int, loss: float) -> Message:
    set_task_identity(1)
    metrics = MetricRecord({"num-examples": n, keys.INITIAL_LOSS: loss})
    content = RecordDict({keys.ARRAYS: ArrayRecord(_state(seed)), "metrics": metrics})
    return Message(content=content, dst_node_id=seed + 1, message_type="train")


def _run(
    strategy: QFedAvg, current: dict[str, torch.Tensor], replies: list[Message]
) -> dict[str, np.ndarray]:
    strategy.current_arrays = ArrayRecord(current)
    arrays, _ = strategy.aggregate_train(1, replies)
    assert arrays is not None
    return {k: v.numpy() for k, v in arrays.items()}


def test_qffl_step_on_parameters_only_and_buffers_averaged() -> None:
    current = _state(0)
    sizes, losses = (30, 10), (0.9, 0.4)
    ours = BufferAwareQFedAvg(client_learning_rate=0.1, train_loss_key=keys.INITIAL_LOSS, q=1.0)
    got = _run(ours, current, [_reply(s, n, loss) for s, n, loss in zip((1, 2), sizes, losses, strict=True)])
    params = {name for name, _ in build_model("vector", (9,), 2).named_parameters()}
    # Flower's own q-FFL on the parameters alone is the reference for every trained weight
    flower = QFedAvg(client_learning_rate=0.1, train_loss_key=keys.INITIAL_LOSS, q=1.0)
    only = {k: v for k, v in current.items() if k in params}
    replies = []
    for s, n, loss in zip((1, 2), sizes, losses, strict=True):
        set_task_identity(1)
        rec = ArrayRecord({k: v for k, v in _state(s).items() if k in params})
        metrics = MetricRecord({"num-examples": n, keys.INITIAL_LOSS: loss})
        replies.append(
            Message(RecordDict({keys.ARRAYS: rec, "metrics": metrics}), dst_node_id=s, message_type="train")
        )
    reference = _run(flower, only, replies)
    assert set(got) == set(current)
    for name in params:
        np.testing.assert_array_equal(got[name], reference[name])
    # buffers: the example-weighted mean of the clients' values, the global dtype kept
    mean = (30 * _state(1)["extractor.1.running_mean"] + 10 * _state(2)["extractor.1.running_mean"]) / 40
    np.testing.assert_allclose(got["extractor.1.running_mean"], mean.numpy(), rtol=1e-6)
    assert (
        got["extractor.1.num_batches_tracked"].dtype
        == current["extractor.1.num_batches_tracked"].numpy().dtype
    )
    assert int(got["extractor.1.num_batches_tracked"]) == round((30 * 4 + 10 * 5) / 40)
    # and the buffers differ from what Flower's step on every array would give
    everything = _run(
        QFedAvg(client_learning_rate=0.1, train_loss_key=keys.INITIAL_LOSS, q=1.0),
        {k: v.float() if not v.is_floating_point() else v for k, v in current.items()},
        [_float_reply(s, n, loss) for s, n, loss in zip((1, 2), sizes, losses, strict=True)],
    )
    assert not np.allclose(everything["extractor.1.running_mean"], got["extractor.1.running_mean"])


def _float_reply(seed: int, n: int, loss: float) -> Message:
    set_task_identity(1)
    state = {k: v.float() if not v.is_floating_point() else v for k, v in _state(seed).items()}
    metrics = MetricRecord({"num-examples": n, keys.INITIAL_LOSS: loss})
    return Message(
        RecordDict({keys.ARRAYS: ArrayRecord(state), "metrics": metrics}),
        dst_node_id=seed + 1,
        message_type="train",
    )
