"""``python -m fedlab.cli``: the same as the ``fedlab`` console script."""

from fedlab.cli import main

main()
