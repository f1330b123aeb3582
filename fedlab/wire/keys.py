"""Names on the wire between `server/` and `clients/`: one definition each, imported by both sides.

Why one module: a key spelled differently on the two sides does not fail, it is simply absent
(a record the other side never finds). With one owner a rename is one edit and a typo is an
ImportError.

What travels where:

* the run config (``Context.run_config``), once per run: `RUN_CONFIG` holds the whole
  `SimulationConfig` as JSON in a simulation; a deployment passes the flat
  ``[tool.flwr.app.config]`` keys instead (`fedlab.config.SimulationConfig.from_flat`);
* each message's `CONFIG` record: the round (Flower's `SERVER_ROUND`), the resolved `TARGET`
  domain, `NUM_CLASSES`, the `CLIENT_MODE` of the strategy's local objective, and what a
  strategy adds (Flower's FedProx: `PROXIMAL_MU`; q-FFL: `REPORT_INITIAL_LOSS`);
* replies: the weights (`ARRAYS`), one `METRICS` record of numbers the server may average, and an
  `INFO` record saying who answered (never averaged); FedKA-family rounds add `EMBEDDINGS` to
  the train message, tabular evaluation replies a `FAIRNESS` record.
"""

from __future__ import annotations

# -- run config ----------------------------------------------------------------------
RUN_CONFIG = "fedlab-config"

# -- records of a message --------------------------------------------------------------
ARRAYS = "arrays"  # Flower's default arrayrecord_key
CONFIG = "config"  # Flower's default configrecord_key
METRICS = "metrics"
INFO = "info"
EMBEDDINGS = "target-embeddings"
FAIRNESS = "fairness"
FAIRNESS_JSON = "json"  # the key inside the FAIRNESS record

# -- keys of the server's CONFIG record -------------------------------------------------
SERVER_ROUND = "server-round"  # set by Flower's strategies
TARGET = "target"
NUM_CLASSES = "num-classes"
CLIENT_MODE = "client-mode"
PROXIMAL_MU = "proximal-mu"  # set by Flower's FedProx
REPORT_INITIAL_LOSS = "report-initial-loss"

# -- keys of a reply's INFO record ------------------------------------------------------
CLIENT_ID = "client-id"
CLIENT = "client"  # "<id>:<domain>", the name results use
DOMAIN = "domain"
WORKER = "worker"  # the Ray node a client ran on (engine "ray")

# -- metric names of a reply's METRICS record -------------------------------------------
NUM_EXAMPLES = "num-examples"  # Flower's default weighted_by_key
TRAIN_LOSS = "train-loss"
TRAIN_CE = "train-ce"
TRAIN_ALIGN = "train-align"
ALPHA = "alpha"
INITIAL_LOSS = "initial-loss"  # loss of the received global model on the client's rows (q-FFL)
OWN_ACCURACY = "own-accuracy"
EPSILON = "epsilon"
DELTA = "delta"
NOISE_MULTIPLIER = "noise-multiplier"
SAMPLE_RATE = "sample-rate"
DP_STEPS = "dp-steps"
BUDGET_EXHAUSTED = "budget-exhausted"
