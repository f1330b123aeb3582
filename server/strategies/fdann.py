"""f-DANN: federated domain-adversarial baseline of the FedKA paper.

Like f-DAN the server sends target embeddings; each client trains a local domain
discriminator (kept in the node's state, not aggregated) on source features passed
through gradient reversal versus the received target embeddings.
"""

from __future__ import annotations

from server.strategies.fdan import FDAN


class FDANN(FDAN):
    """f-DAN with a client-side domain discriminator (client mode "dann"). No DP mode: the
    discriminator's batches mix target rows into the per-sample gradients."""

    client_mode = "dann"
    dp_modes = ()
