"""FedProx (Li et al. 2020): Flower's FedProx sends μ; clients add μ/2‖w − w_global‖²."""

from __future__ import annotations

from flwr.serverapp.strategy import FedProx

from server.strategies.domain import DomainAwareMixin


class DomainFedProx(DomainAwareMixin, FedProx):
    client_mode = "prox"
