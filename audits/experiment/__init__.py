"""The privacy-vs-fairness audit: grid, tasks, one anonymization per cell, classifiers, results."""
