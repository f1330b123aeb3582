"""How ClientApps are run: fedlab's direct Grid, its backends, Flower internals, interrupts."""
