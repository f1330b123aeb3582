"""fedlab: federated-learning and privacy/fairness simulation platform."""

__version__ = "0.1.0"
