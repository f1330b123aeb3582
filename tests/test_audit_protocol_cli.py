"""`fedlab audit --protocol` and the grid-forming / failure rules of the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.test_audit_protocol import _tiny
from tests.test_audit_run import ROWS, _main


def test_protocol_cli_tiny_run_writes_all_files(tmp_path: Path, monkeypatch, capsys) -> None:
    csv, schema = _tiny(tmp_path)
    out = tmp_path / "run"
    args = ["audit", "--protocol", "arcolezi2025", "--csv", str(csv), "--schema", str(schema),
            "--classifier", "logreg", "--k", "1,5", "--seeds", "2", "--out", str(out)]  # fmt: skip
    code, _, stderr = _main(args, monkeypatch, capsys)
    assert code == 0, stderr
    res = pd.read_csv(out / "results.csv")
    assert set(res["method"]) == {"k-anonymity"} and len(res) == 2 * 2  # --k alone: k cells only
    assert {"summary.json", "attribution.csv"} <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["qis"] == ["sex", "age"] and summary["settings"]["protected_in_test"] == "raw"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--protocol", "nope"], "unknown protocol"),
        (["--protocol", "arcolezi2025", "--encoding", "ordinal"], "--encoding"),
        (["--compare", "x.csv"], "need --protocol"),
    ],
)
def test_protocol_cli_bad_input(tmp_path: Path, monkeypatch, capsys, extra: list[str], message: str) -> None:
    csv, schema = _tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = ["audit", "--csv", str(csv), "--schema", str(schema), *extra, "--out", str(tmp_path / "o")]
    code, _, stderr = _main(args, monkeypatch, capsys)
    assert code == 2 and stderr.startswith("error: ") and message in stderr, stderr
    assert not (tmp_path / "o").exists()


def test_protocol_value_outside_hierarchy_exit_2_names_it(tmp_path: Path, monkeypatch, capsys) -> None:
    csv, schema = _tiny(tmp_path)
    schema.write_text(schema.read_text().replace("high = 100 }", 'high = 100, leaves = "range" }'))
    args = ["audit", "--protocol", "arcolezi2025", "--csv", str(csv), "--schema", str(schema),
            "--classifier", "logreg", "--out", str(tmp_path / "o")]  # fmt: skip
    code, _, stderr = _main(args, monkeypatch, capsys)
    assert code == 2 and "column 'age' value '69'" in stderr and "--hierarchy-gaps" in stderr
    assert not (tmp_path / "o").exists()


def test_default_audit_k_alone_runs_k_cells_only(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "k"
    args = ["audit", "--dataset", "german", "--max-rows", str(ROWS), "--k", "1,5", "--algorithm", "greedy",
            "--classifier", "logreg", "--seeds", "1", "--quiet", "--out", str(out)]  # fmt: skip
    code, _, stderr = _main(args, monkeypatch, capsys)
    assert code == 0, stderr
    assert set(pd.read_csv(out / "results.csv")["family"]) == {"baseline", "k"}


def test_protocol_from_grid_toml(tmp_path: Path, monkeypatch, capsys) -> None:
    csv, schema = _tiny(tmp_path)
    cfg = tmp_path / "grid.toml"
    cfg.write_text(
        f'protocol = "arcolezi2025"\ncsv = "{csv}"\nschema_path = "{schema}"\nks = [1, 5]\n'
        'models = ["k"]\nseeds = [3]\nclassifier = "logreg"\n'
    )
    out = tmp_path / "run"
    code, _, stderr = _main(["audit", "--config", str(cfg), "--out", str(out)], monkeypatch, capsys)
    assert code == 0, stderr
    assert sorted(pd.read_csv(out / "results.csv")["k_parameter"].unique()) == [1, 5]
    assert set(pd.read_csv(out / "results.csv")["SEED"]) == {3}
