"""Issue #27, bad inputs: every probe of `scripts/probe_table.py` gives exit 2, one `error:` line
naming the file / column / value, and leaves nothing behind.

The fixtures (CSVs, schema, binary config) are the probe script's own, so the acceptance table
and this test cannot drift apart. The CLI runs in-process (`fedlab.cli.main`), which keeps the
whole table to a few seconds.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedlab.core.errors import DataError
from fedlab.core.tables import MAX_ABS_VALUE, check_finite, check_two_classes, check_unique_header

ROOT = Path(__file__).resolve().parents[1]


def _probes():
    spec = importlib.util.spec_from_file_location("probe_table", ROOT / "scripts" / "probe_table.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


PROBE = _probes()

# probe -> what its one error line must say (besides naming the file)
EXPECTED = {
    "config-binary": "not a text file",
    "sim-inf": "column 'hours' row 4 holds inf",
    "sim-1e308": "column 'hours' row 4 holds 1e+308",
    "audit-inf": "column 'hours' row 4 holds inf",
    "audit-1e308": "column 'hours' row 4 holds 1e+308",
    "sim-out-is-file": "is an existing file",
    "sim-out-below-file": "is a file, so no directory can be created below it",
    "sim-out-unwritable": "is not writable",
    "audit-out-is-file": "is an existing file",
    "audit-out-below-file": "is a file, so no directory can be created below it",
    "audit-out-unwritable": "is not writable",
    "sim-one-class-label": "label column 'income' holds only '>50K'; expected at least two classes",
    "sim-duplicate-columns": "column name 'age' appears 2 times in the header with different values",
    "audit-duplicate-columns": "column name 'age' appears 2 times in the header with different values",
    "sim-local-steps-1e21": "--local-steps: Input should be less than or equal to 100000",
    "sim-header-only": "no complete rows",
    "sim-every-row-missing": "no complete rows",
    "audit-header-only": "no complete rows",
    "sim-nan-loss-lr1e6": "diverged",
}


def _main(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    from fedlab import cli

    monkeypatch.setattr(sys, "argv", ["fedlab", *args])
    monkeypatch.setenv("COLUMNS", "200")
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    _, err = capsys.readouterr()
    return code, err


def test_every_probe_has_an_expectation() -> None:
    assert set(EXPECTED) == set(PROBE.PROBES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_probe_is_one_error_line_exit_2_nothing_written(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    args = PROBE.PROBES[name](tmp_path)
    before = {p for p in tmp_path.rglob("*")}
    code, err = _main(args, monkeypatch, capsys)
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2, err
    assert len(errors) == 1 and "Traceback" not in err, err
    assert EXPECTED[name] in errors[0], errors[0]
    assert {p for p in tmp_path.rglob("*")} == before, "the failed command wrote files"


def test_check_finite_names_file_column_row_and_bound() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, -np.inf], "s": ["x", "y"]})
    with pytest.raises(DataError, match=r"f.csv: column 'b' row 2 holds -inf"):
        check_finite(frame, "f.csv")
    check_finite(pd.DataFrame({"a": [MAX_ABS_VALUE, np.nan]}), "ok.csv")  # the bound itself and NaN pass


def test_one_class_and_duplicate_header_checks(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds only 'yes'"):
        check_two_classes(pd.Series(["yes", "yes", None]), "f.csv", "y")
    path = tmp_path / "d.csv"
    path.write_text('a,"b",c,b\n1,2,3,4\n')
    with pytest.raises(DataError, match="column name 'b' appears 2 times in the header with different"):
        check_unique_header(path)
    check_unique_header(path, used=["a", "c"])  # the repeated name is not used
    path.write_text("a,b,b\n1,2,2\n3,4,4\n")  # identical copies (COMPAS repeats priors_count)
    check_unique_header(path)
    path.write_text("a,b\n1,2\n")
    check_unique_header(path)
