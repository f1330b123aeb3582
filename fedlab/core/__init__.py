"""Shared leaves every layer may use: user errors, atomic run directories, seeding, log progress."""
