"""The contract between `server/` and `clients/`: message keys (`keys`), weights as records (`arrays`)."""
