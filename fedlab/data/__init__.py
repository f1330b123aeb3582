"""Domain federations: load them (`load_federation`) and split them into clients (`make_clients`)."""

from fedlab.data.base import Domain, FederationData
from fedlab.data.registry import (
    ClientPartition,
    clear_cache,
    load_federation,
    make_clients,
    prepare,
    resolve_target,
)

__all__ = [
    "ClientPartition",
    "Domain",
    "FederationData",
    "clear_cache",
    "load_federation",
    "make_clients",
    "prepare",
    "resolve_target",
]
