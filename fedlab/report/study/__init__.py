"""The report of a `fedlab study`: organized by condition (strategy × DP ε × local anonymization)."""
