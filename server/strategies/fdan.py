"""f-DAN: federated DAN baseline of the FedKA paper.

Each round the server embeds a sample of the target pool with the global feature
extractor and sends the embeddings (never raw target inputs); clients add the ramped
multi-kernel MMD between their source features and those embeddings. No voting.
"""

from __future__ import annotations

from flwr.serverapp.strategy import FedAvg

from server.strategies.domain import DomainAwareMixin


class FDAN(DomainAwareMixin, FedAvg):
    client_mode = "mmd"

    def __init__(self, *args, embeddings_per_round: int = 256, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.embeddings_per_round = embeddings_per_round
