"""Published audit protocols, each run exactly as its paper did (one sub-package per paper)."""
