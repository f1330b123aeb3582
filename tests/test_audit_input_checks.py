"""Impossible ℓ / t rejected before any cell runs; dropped-row counts in the default audit."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from audits.anonymity.feasibility import check_privacy_feasible
from fedlab.core.errors import DataError
from tests.test_audit_protocol import _tiny
from tests.test_audit_run import ROWS, _main


def _binary() -> pd.DataFrame:
    return pd.DataFrame({"y": ["a"] * 6 + ["b"] * 4, "part": ["p"] * 5 + ["q"] * 5})


def test_l_above_distinct_values_is_rejected_naming_column_and_values() -> None:
    with pytest.raises(DataError) as err:
        check_privacy_feasible(_binary(), ["y"], [2, 3], [], "d.csv")
    msg = str(err.value)
    assert msg.startswith("d.csv: l = 3 can never be met") and "'y'" in msg
    assert "'a' (6 rows)" in msg and "'b' (4 rows)" in msg


def test_l_equal_to_distinct_values_and_any_t_in_range_pass() -> None:
    # l = 2 on two values, and t close to 0: the single fully generalized class has EMD 0
    check_privacy_feasible(_binary(), ["y"], [2], [0.001, 0.5], "d.csv")


def test_negative_t_is_rejected() -> None:
    with pytest.raises(DataError, match=r"t = -0\.1 can never be met"):
        check_privacy_feasible(_binary(), ["y"], [], [-0.1], "d.csv")


def test_l_checked_per_partition() -> None:
    frame = _binary()
    parts = {name: idx for name, idx in frame.groupby("part").groups.items()}
    check_privacy_feasible(frame, ["y"], [2], [], "d.csv")  # both values occur in the whole table
    with pytest.raises(DataError, match="in partition 'p'"):  # partition p holds only 'a'
        check_privacy_feasible(frame, ["y"], [2], [], "d.csv", parts)


def test_default_audit_impossible_l_exit_2_nothing_written(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "o"
    args = ["audit", "--dataset", "german", "--max-rows", str(ROWS), "--models", "l",
            "--l", "3", "--algorithm", "greedy", "--classifier", "logreg", "--seeds", "1", "--quiet",
            "--out", str(out)]  # fmt: skip
    code, _, stderr = _main(args, monkeypatch, capsys)
    assert code == 2 and stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1, stderr
    assert "l = 3 can never be met" in stderr and "'credit'" in stderr
    assert not out.exists() and not (tmp_path / ".o.cells").exists()


def test_protocol_impossible_l_exit_2_nothing_written(tmp_path: Path, monkeypatch, capsys) -> None:
    csv, schema = _tiny(tmp_path)
    out = tmp_path / "o"
    args = ["audit", "--protocol", "arcolezi2025", "--csv", str(csv), "--schema", str(schema),
            "--classifier", "logreg", "--k", "1,5", "--l", "3", "--seeds", "1",
            "--out", str(out)]  # fmt: skip
    code, _, stderr = _main(args, monkeypatch, capsys)
    assert code == 2 and stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1, stderr
    assert "l = 3 can never be met" in stderr and "'score'" in stderr and str(csv) in stderr
    assert not out.exists()


def test_default_audit_reports_dropped_rows(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "run"
    args = ["audit", "--dataset", "adult", "--max-rows", str(ROWS), "--k", "1", "--algorithm", "greedy",
            "--classifier", "logreg", "--seeds", "1", "--quiet", "--out", str(out)]  # fmt: skip
    code, stdout, stderr = _main(args, monkeypatch, capsys)
    assert code == 0, stderr
    counts = json.loads((out / "summary.json").read_text())["dataset"]["row_counts"]
    assert counts["missing_dropped"] > 0  # Adult's '?' rows
    assert counts["read"] == counts["filtered_out"] + counts["missing_dropped"] + counts["rows"]
    assert f"{counts['missing_dropped']} dropped for a missing value" in stdout
