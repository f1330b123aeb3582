"""Stop a run whose training diverged: a NaN/inf loss or weight in any train reply is an error.

Why: averaging one diverged client's weights into the global model makes every weight NaN, and
the run then "finishes" with ``train-loss: null``, a NaN ``model.pt`` and a summary that looks
fine (issue #27: values near 1e308, or a learning rate of 1e30). `FiniteReplies` wraps the Grid
the strategy talks to (as `server.replies.ReplyTracker` does) and raises a one-line
`fedlab.core.errors.FedlabError` naming the round and the client as soon as such a reply
arrives, before it is aggregated. A DP client whose budget is exhausted reports NaN on purpose
(it did not train) and is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from flwr.app import Message

from fedlab.core.errors import FedlabError
from fedlab.wire import keys

# metrics of a train reply that must be finite when the client trained
CHECKED_METRICS = (keys.TRAIN_LOSS, keys.TRAIN_CE)


def _round_of(messages: list[Message]) -> Any:
    for msg in messages:
        cfg = msg.content.config_records.get(keys.CONFIG)
        if cfg is not None and keys.SERVER_ROUND in cfg:
            return int(cfg[keys.SERVER_ROUND])
    return "?"


def _who(reply: Message) -> str:
    info = reply.content.config_records.get(keys.INFO)
    if info is not None and keys.CLIENT in info:
        return str(info[keys.CLIENT])
    return f"node {reply.metadata.src_node_id}"


def non_finite(reply: Message) -> str:
    """What is not finite in one train reply ('' when all is well or the reply is an error)."""
    if reply.has_error():
        return ""
    content = reply.content
    metrics = content.metric_records.get(keys.METRICS)
    if metrics is not None and int(metrics.get(keys.BUDGET_EXHAUSTED, 0)):
        return ""
    for key in CHECKED_METRICS:
        if metrics is not None and key in metrics and not math.isfinite(float(metrics[key])):  # type: ignore[arg-type]
            return f"its {key} is {float(metrics[key])}"  # type: ignore[arg-type]
    arrays = content.array_records.get(keys.ARRAYS)
    if arrays is not None:
        for name, array in arrays.items():
            values = array.numpy()
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                return f"its weights {name!r} hold {'NaN' if np.isnan(values).any() else 'inf'}"
    return ""


class FiniteReplies:
    """A Grid proxy: forwards everything; a train reply with a non-finite loss/weight stops the run."""

    def __init__(self, grid: Any) -> None:
        self._grid = grid

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> list[Message]:
        messages = list(messages)
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        if messages and messages[0].metadata.message_type.startswith("train"):
            for reply in replies:
                problem = non_finite(reply)
                if problem:
                    raise FedlabError(
                        f"round {_round_of(messages)}: client {_who(reply)} diverged: {problem}; "
                        "nothing was aggregated. Lower training.lr or check the data for huge values"
                    )
        return replies
