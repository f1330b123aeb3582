"""FedAvg (McMahan et al. 2017) with fedlab's per-round target-domain bookkeeping."""

from __future__ import annotations

from flwr.serverapp.strategy import FedAvg

from server.strategies.domain import DomainAwareMixin


class DomainFedAvg(DomainAwareMixin, FedAvg):
    """Flower's FedAvg; clients train with plain cross-entropy. Central DP noises its average."""

    client_mode = "ce"
    dp_modes = ("client", "central")
