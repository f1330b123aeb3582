"""FedKA (Sun, Chong & Ochiai 2022): feature distribution matching + federated voting.

Per round: (1) target embeddings from the global extractor go to the clients (f-DAN's
`configure_train`); (2) clients train with cross-entropy + α·MK-MMD; (3) after FedAvg
aggregation FedKA's voting step (`server.steps.voting`) lets every returned model vote on the
target pool and fine-tunes the global model on the adopted votes. Before the voting warm-up
ends FedKA is f-DAN. The voting step composes with other aggregations too (``fedadam+fedka``,
`server.strategies.registry`).
"""

from __future__ import annotations

from typing import Any

from server.steps.voting import VotingStep
from server.strategies.fdan import FDAN
from server.strategies.settings import StrategySettings


class FedKA(FDAN):
    """f-DAN plus FedKA's voting step. Client DP only: under central DP the votes would come from
    the individual, un-noised client models."""

    dp_modes = ("client",)
    has_server_step = True

    def __init__(self, *args: Any, voting: VotingStep | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server_step = voting if voting is not None else VotingStep()

    @classmethod
    def settings_kwargs(cls, settings: StrategySettings) -> dict[str, Any]:
        """f-DAN's keywords plus the voting step configured by the training settings."""
        return {
            **super().settings_kwargs(settings),
            "voting": VotingStep.from_settings(settings.training, settings.seed),
        }


class FedKARef(FedKA):
    """FedKA with the reference notebook's voting rule, whatever the settings say (plurality
    winner of every sample, voters with their own BatchNorm statistics, every layer fine-tuned,
    no guard): the name says which FedKA a result used, next to fedlab's default ``fedka``."""

    @classmethod
    def settings_kwargs(cls, settings: StrategySettings) -> dict[str, Any]:
        """FedKA's keywords with the reference voting step."""
        voting = VotingStep.reference(settings.training, settings.seed)
        return {**super().settings_kwargs(settings), "voting": voting}
