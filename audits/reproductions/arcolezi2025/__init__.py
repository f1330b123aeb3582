"""Arcolezi et al. 2025's protocol: ANJANA-style greedy, label encoding, XGBoost, its metrics."""
