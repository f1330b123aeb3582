"""The contract between server/ and clients/: message keys, weights as Flower records."""
