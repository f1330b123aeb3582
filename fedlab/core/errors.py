"""User-facing errors.

A `FedlabError` carries a one-line message that names the offending file, column or
value and what was expected. The CLI prints it as ``error: <message>`` and exits 2,
without a traceback, so every bad-input path must raise this (or a subclass).
"""

from __future__ import annotations


class FedlabError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    def __init__(self, message: str) -> None:
        # Keep the message on one line: the CLI prints it verbatim.
        super().__init__(" ".join(str(message).split()))


class ConfigError(FedlabError):
    """Invalid configuration value or file."""


class DataError(FedlabError):
    """Missing, corrupt or unexpected data."""
