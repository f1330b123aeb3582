"""Package data (generalization hierarchies); a package so that setuptools ships its CSVs."""
