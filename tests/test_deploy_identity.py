"""Issue #27: a deployment names both fedlabs when the submitted code differs from the installed one."""

from __future__ import annotations

from pathlib import Path

from fedlab.core.identity import identity_message, source_hash


def _package(root: Path, body: str) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text('__version__ = "0.1.0"\n')
    (root / "sub" / "m.py").write_text(body)
    return root


def test_same_code_is_silent_and_different_code_names_both(tmp_path: Path) -> None:
    a = _package(tmp_path / "a" / "fedlab", "x = 1\n")
    b = _package(tmp_path / "b" / "fedlab", "x = 1\n")
    assert source_hash(a) == source_hash(b)
    assert identity_message(("0.1.0", a), ("0.1.0", b)) == ""
    assert identity_message(("0.1.0", a), ("0.1.0", None)) == ""  # nothing installed to compare
    (b / "sub" / "m.py").write_text("x = 2\n")
    msg = identity_message(("0.1.0", a), ("0.1.1", b))
    assert source_hash(a) in msg and source_hash(b) in msg
    assert "submitted fedlab 0.1.0" in msg and "fedlab 0.1.1 installed beside this SuperNode" in msg
