"""Audit run directories in words and plots: grid cells, findings, risk, the arcolezi2025 protocol."""
