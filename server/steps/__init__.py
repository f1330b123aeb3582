"""Server steps: work the server does after aggregation, composable with any strategy's average.

A step (`ServerStep`) sees the aggregated weights and every returned model's predictions on the
target pool, and may replace the weights; FedKA's federated voting + fine-tuning is one
(`server.steps.voting`). Any strategy in `server.strategies` can carry one (`fedadam+fedka`).
"""

from server.steps.base import ServerStep

__all__ = ["ServerStep"]
