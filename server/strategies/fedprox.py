"""FedProx (Li et al. 2020): Flower's FedProx sends μ; clients add μ/2‖w − w_global‖²."""

from __future__ import annotations

from typing import Any

from flwr.serverapp.strategy import FedProx

from server.strategies.domain import DomainAwareMixin
from server.strategies.settings import StrategySettings


class DomainFedProx(DomainAwareMixin, FedProx):
    """Flower's FedProx (an average; the proximal term is the clients'): μ from `proximal_mu`."""

    client_mode = "prox"
    dp_modes = ("client", "central")

    @classmethod
    def settings_kwargs(cls, settings: StrategySettings) -> dict[str, Any]:
        """μ from `training.proximal_mu`."""
        return {"proximal_mu": settings.training.proximal_mu}
