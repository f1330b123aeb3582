"""f-DAN: federated DAN baseline of the FedKA paper.

Each round the server embeds a sample of the target pool with the global feature
extractor and sends the embeddings (never raw target inputs); clients add the ramped
multi-kernel MMD between their source features and those embeddings. No voting.
"""

from __future__ import annotations

from typing import Any

from flwr.serverapp.strategy import FedAvg

from server.strategies.domain import DomainAwareMixin
from server.strategies.settings import StrategySettings


class FDAN(DomainAwareMixin, FedAvg):
    """FedAvg whose clients align their features with the target's (client mode "mmd")."""

    client_mode = "mmd"
    dp_modes = ("client", "central")

    def __init__(
        self, *args: Any, embeddings_per_round: int = 256, mmd_reweight: str = "off", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.embeddings_per_round = embeddings_per_round
        self.mmd_reweight = mmd_reweight

    @classmethod
    def settings_kwargs(cls, settings: StrategySettings) -> dict[str, Any]:
        """Target embeddings per round from `training.target_sample`; class-weighted matching from
        `training.mmd_reweight`."""
        t = settings.training
        return {"embeddings_per_round": t.target_sample, "mmd_reweight": t.mmd_reweight}
