"""Learning on one site: models, local training, MK-MMD, federated voting, differential privacy."""
