"""fedlab's strategies: one file per strategy on a shared domain-aware base, built by name."""
