"""Simulation and sweep run directories in words and plots: per-round curves, paired comparisons."""
