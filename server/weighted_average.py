"""FedAvg's weighted average of the returned weights, fed one decoded reply at a time.

Why not Flower's `aggregate_arrayrecords`: it decodes every reply's arrays itself
(`Array.numpy()`, which parses each ``.npy`` header), while fedlab decodes every reply anyway to
score the returned model on the target (Group Effect). `WeightedAverage` takes the arrays already
decoded (`fedlab.wire.arrays`), so a reply is decoded once and held decoded only for its turn. The
arithmetic is Flower's, step for step: factor = w / Σw as Python numbers, ``value * factor``
summed in place in reply order (float32 weights stay float32, integer buffers become float64),
encoded as `Array(np.asarray(sum))` does; the record is bitwise the one `aggregate_arrayrecords`
returns (tests/test_arrays.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from flwr.app import ArrayRecord, Message, MetricRecord

from fedlab.wire.arrays import state_record


class WeightedAverage:
    """Σ factor_i · arrays_i over the replies, `add`ed in the order of `weights`."""

    def __init__(self, weights: Sequence[float]) -> None:
        total = sum(weights)
        self.factors = [w / total for w in weights]
        self._sum: dict[str, np.ndarray] = {}
        self._added = 0

    def add(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Add one decoded reply's weights, scaled by its example count."""
        factor = self.factors[self._added]
        self._added += 1
        for key, value in arrays.items():
            if key not in self._sum:
                self._sum[key] = value * factor
            else:
                self._sum[key] += value * factor

    def record(self) -> ArrayRecord:
        """The average as an ArrayRecord (the global model's dtypes and names)."""
        if self._added != len(self.factors):
            raise RuntimeError(f"weighted average: {self._added} of {len(self.factors)} replies added")
        return state_record({key: np.asarray(value) for key, value in self._sum.items()})


def consistent(replies: Sequence[Message], weight_key: str) -> bool:
    """What Flower's FedAvg checks before averaging (one ArrayRecord and one MetricRecord per
    reply, the same record names and keys in all, a scalar weight). False: let Flower's
    `aggregate_train` run and report the problem its own way."""
    layouts = []
    for msg in replies:
        arrays = [(k, r) for k, r in msg.content.items() if isinstance(r, ArrayRecord)]
        metrics = [(k, r) for k, r in msg.content.items() if isinstance(r, MetricRecord)]
        if len(arrays) != 1 or len(metrics) != 1 or isinstance(metrics[0][1].get(weight_key), list):
            return False
        (aname, arecord), (mname, mrecord) = arrays[0], metrics[0]
        layouts.append((aname, frozenset(arecord.keys()), mname, frozenset(mrecord.keys())))
    return bool(layouts) and weight_key in layouts[0][3] and all(x == layouts[0] for x in layouts)
