"""Fields of a client's reply that the server reads: who sent it, from which worker, its records.

Why its own module: the domain-aware strategies (`server.strategies.domain`) and the deployment's
reply bookkeeping (`server.replies`) read the same fields of the same messages; one owner keeps
the keys (`fedlab.wire.keys`) and the fallbacks (a reply without a client name is named by its
id) in one place.
"""

from __future__ import annotations

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from fedlab.wire import keys


def reply_order(msg: Message) -> tuple[bool, str]:
    """Sort key: good replies first, by client name — aggregation order must not depend on arrival."""
    return (msg.has_error(), "" if msg.has_error() else client_name(msg.content))


def info_of(content: RecordDict) -> ConfigRecord | None:
    """The reply's info record (client name, id, worker), or None for a client that sent none."""
    info = content.get(keys.INFO)
    return info if isinstance(info, ConfigRecord) else None


def worker_of(content: RecordDict) -> str:
    """Which worker process trained the reply (empty when unknown): the report groups timings by it."""
    info = info_of(content)
    return str(info[keys.WORKER]) if info is not None and keys.WORKER in info else ""


def client_id(content: RecordDict) -> int:
    """The client's numeric id (-1 when absent): sampled-client lists are recorded by id."""
    info = info_of(content)
    return int(info[keys.CLIENT_ID]) if info is not None and keys.CLIENT_ID in info else -1  # type: ignore[arg-type]


def client_name(content: RecordDict) -> str:
    """The client's name, else its id: per-client results are keyed by what the user called it."""
    info = info_of(content)
    if info is not None and keys.CLIENT in info:
        return str(info[keys.CLIENT])
    return str(client_id(content))


# The first record of a type, found by scanning the values: `RecordDict.array_records` /
# `.metric_records` build a synced copy of the dict on every access (~10 µs each, several
# times per reply per round).
def only_arrays(content: RecordDict) -> ArrayRecord:
    """The reply's one ArrayRecord (the returned model)."""
    return next(r for r in content.values() if isinstance(r, ArrayRecord))


def only_metrics(content: RecordDict) -> MetricRecord:
    """The reply's one MetricRecord (sample count, accuracy, spent ε)."""
    return next(r for r in content.values() if isinstance(r, MetricRecord))
