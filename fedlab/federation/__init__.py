"""What a run needs before training: data, target split, clients, model factory, local anonymization."""
