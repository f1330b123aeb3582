"""`import fedlab` is the library's front door: every promised name resolves, and importing it is cheap."""

from __future__ import annotations

import subprocess
import sys

import fedlab


def test_every_front_door_name_resolves() -> None:
    for name in fedlab.__all__:
        assert getattr(fedlab, name) is not None, name
    from fedlab.runs.simulate import simulate

    assert fedlab.simulate is simulate
    assert "fedadam" in fedlab.strategies() and "fedka" in fedlab.strategies()


def test_import_fedlab_loads_neither_torch_nor_flower() -> None:
    code = "import sys, fedlab, audits.anonymity; print(sorted({'torch', 'flwr'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
