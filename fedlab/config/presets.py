"""Named experimental protocols: a preset of config values a paper's comparison used.

``protocol = "fedka2022"`` (CLI ``--protocol fedka2022``) is the budget and optimizer of the
FedKA reference implementation (Sun, Chong & Ochiai 2022; notebook ``FedKA-Digit-Five.ipynb``
of github.com/yuweisunn/federated-knowledge-alignment):

* Adam, learning rate 3e-4, no weight decay, batch size 16, on clients and for the server's
  fine-tuning;
* 200 rounds; each client trains on 32 batches per round, at most one pass over its data
  (the notebook breaks out of one pass of its data loader after 32 batches);
* MK-MMD term weighted by the ramp α = 2/(1+exp(−5p)) − 1 (p = training progress), against
  32 × 16 = 512 target embeddings per round;
* federated voting from the first round on (no warm-up), fine-tuning the global model on up
  to 128 batches of voted target samples per round, loss weighted by α.

Models: the reference CNN for digit images (conv64-BN-pool-ReLU, conv50-BN-dropout-pool-ReLU,
fc100-BN-ReLU, fc10: `fedlab.learn.models.DigitCNN`); feature vectors (Office-Caltech10 SURF,
bag-of-words) use `fedlab.learn.models.FeatureMLP`, since the paper's image backbones do not apply
to pre-extracted features.

Departures kept (each a switch): fedlab's voters use target BatchNorm statistics
(``vote_target_batchnorm``) and adopt the most confident, class-balanced share of the votes
(``vote_select``); a sample needs a strict majority of voters (``vote_rule = "majority"``; the
notebook adopts the plurality winner of every sample, ``vote_rule = "plurality"``);
Adam's state starts fresh every round on a client (the notebook keeps one optimizer per client
across rounds; fedlab clients are stateless); ``fedka`` sends the fine-tuned model to the clients
and fine-tunes with a fresh Adam every round (the notebook's clients start from the averaged model
and its one server Adam lives for the run: ``vote_clients_start = "averaged"``,
``finetune_optimizer_state = "run"``, which ``fedka-ref`` always uses); the MMD term is added
to every cross-entropy step instead of a second pass with a step every 8 batches; the MMD
compares the 100-d embedding (the notebook: the 800-d convolutional features); evaluation uses
a fixed target TEST split that voting and fine-tuning never see (the notebook scores the target
training data) and reports the final round next to the best one (the notebook reports the best
round).

Precedence: defaults < protocol < TOML values < CLI flags, so every setting stays overridable.
"""

from __future__ import annotations

from typing import Any

PROTOCOLS: dict[str, dict[str, Any]] = {
    "fedka2022": {
        "training.optimizer": "adam",
        "training.lr": 3e-4,
        "training.weight_decay": 0.0,
        "training.batch_size": 16,
        "training.local_steps": 32,
        "training.rounds": 200,
        "training.mmd_weight": 1.0,
        "training.target_sample": 512,
        "training.finetune_steps": 128,
        "training.vote_warmup": 0.0,
        "training.max_epochs_per_round": 1.0,
    }
}


def _has(data: dict[str, Any], dotted: str) -> bool:
    node: Any = data
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def apply_protocol(data: dict[str, Any]) -> dict[str, Any]:
    """Fill the named protocol's values into `data` (nested config dict) where not set explicitly.

    Unknown names are left for the config's validation to report."""
    name = data.get("protocol") or ""
    preset = PROTOCOLS.get(name)
    if preset is None:
        return data
    for dotted, value in preset.items():
        if _has(data, dotted):
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return data
