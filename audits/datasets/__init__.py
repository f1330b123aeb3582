"""Tabular data sets for audits: the embedded Adult/German/COMPAS files, schemas, loaders."""
