"""The audit grid end to end on an Adult subsample: results table, resume, CLI, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import audits.experiment.run as audit_run
from audits.experiment.grid import AuditGrid
from audits.experiment.results import checkpoint_dir
from audits.experiment.run import run_audit
from fedlab.core.errors import FedlabError

ROWS = 1500  # Adult subsample: big enough for k=10 and 2-diversity, small enough for seconds


def tiny_grid(**overrides) -> AuditGrid:
    base = {
        "dataset": "adult",
        "models": ["k", "l"],
        "ks": [1, 10],
        "ls": [2],
        "l_ks": [1],
        "algorithms": ["greedy"],
        "classifiers": ["logreg"],
        "seeds": [0, 1],
        "max_rows": ROWS,
        "individual_rows": 200,
        "k_neighbors": 20,
        "n_jobs": 1,
    }
    return AuditGrid(**{**base, **overrides})


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_audit(tiny_grid(), tmp_path_factory.mktemp("audit") / "run", progress=False)


def test_run_directory_layout(finished: Path) -> None:
    names = {p.name for p in finished.iterdir()}
    assert names == {"cells", "results.csv", "results.parquet", "summary.json", "config.toml"}
    assert len(list((finished / "cells").glob("*.json"))) == 6  # (baseline, k=10, l=2) x 2 seeds
    assert not checkpoint_dir(finished).exists()  # checkpoint folder removed once published
    assert not [p for p in finished.parent.iterdir() if p.name.startswith(".")]


def test_results_table(finished: Path) -> None:
    df = pd.read_csv(finished / "results.csv")
    assert len(df) == 6
    assert (df["status"] == "ok").all()
    assert sorted(df["privacy_model"].unique()) == ["baseline", "k=10", "l=2"]
    assert set(df.loc[df["privacy_model"] == "baseline", "algorithm"]) == {"none"}
    for col in [
        "cell_id",
        "client",
        "k",
        "l",
        "t",
        "seed",
        "suppressed_rows",
        "anon_loss",
        "n_train",
        "n_test",
    ]:
        assert col in df.columns
    for attr in ("sex", "race"):
        for key in (
            "spd",
            "disparate_impact",
            "eq_opp_diff",
            "eq_odds_diff",
            "fpr_diff",
            "ppv_diff",
            "acc_diff",
        ):
            assert f"{attr}_{key}" in df.columns
    for col in ("accuracy", "f1", "roc_auc", "consistency", "ncf", "asf", "alf"):
        assert df[col].notna().all(), col
    assert df["accuracy"].between(0.6, 1).all()
    assert (df.loc[df["privacy_model"] == "baseline", "suppressed_rows"] == 0).all()
    anon = df[df["privacy_model"] != "baseline"]
    assert (anon["suppressed_fraction"] <= 0.2 + 1e-9).all()
    assert (anon["n_train"] + anon["suppressed_rows"] == anon["n_train_raw"]).all()
    parquet = pd.read_parquet(finished / "results.parquet")
    assert list(parquet.columns) == list(df.columns) and len(parquet) == len(df)


def test_summary_and_config(finished: Path) -> None:
    summary = json.loads((finished / "summary.json").read_text())
    for key in ("grid", "dataset", "schema", "cells", "command", "fedlab_version", "timings", "columns"):
        assert key in summary
    assert summary["dataset"]["rows"] == ROWS
    assert summary["dataset"]["protected"] == {"sex": "Male", "race": "White"}
    assert len(summary["cells"]) == 3
    cell = next(c for c in summary["cells"] if c["privacy_model"] == "k=10")
    df = pd.read_csv(finished / "results.csv")
    acc = df.loc[df["privacy_model"] == "k=10", "accuracy"]
    assert cell["metrics"]["accuracy"]["mean"] == pytest.approx(acc.mean())
    assert cell["metrics"]["accuracy"]["std"] == pytest.approx(acc.std(ddof=1))
    grid = AuditGrid.model_validate(tomllib.loads((finished / "config.toml").read_text()))
    assert grid == tiny_grid()


def test_same_seed_same_numbers(finished: Path, tmp_path: Path) -> None:
    again = run_audit(tiny_grid(models=["k"], ks=[10], seeds=[1]), tmp_path / "again", progress=False)
    a = pd.read_csv(finished / "results.csv").set_index("cell_id")
    b = pd.read_csv(again / "results.csv").set_index("cell_id")
    cols = ["accuracy", "sex_spd", "race_eq_opp_diff", "ncf", "consistency", "suppressed_rows"]
    pd.testing.assert_frame_equal(a.loc[b.index, cols], b[cols])


def test_resume_reuses_finished_cells(tmp_path: Path) -> None:
    out = run_audit(tiny_grid(models=["k"]), tmp_path / "run", progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    run_audit(tiny_grid(models=["k"]), out, resume=True, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["timings"]["cells_computed"] == 0 and summary["timings"]["cells_reused"] == 4
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")} == stamps
    # extending the grid computes only the new cells
    run_audit(tiny_grid(models=["k"], ks=[1, 5, 10]), out, resume=True, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["timings"]["cells_computed"] == 2 and summary["timings"]["cells_reused"] == 4
    assert len(pd.read_csv(out / "results.csv")) == 6
    for name, stamp in stamps.items():
        assert (out / "cells" / name).stat().st_mtime_ns == stamp


def test_resume_after_interruption_keeps_checkpointed_cells(tmp_path: Path, monkeypatch) -> None:
    calls = {"n": 0}
    real = audit_run.run_task

    def flaky(task):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(audit_run, "run_task", flaky)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_audit(tiny_grid(models=["k"]), out, progress=False)
    assert not out.exists()  # nothing half-published
    assert len(list(checkpoint_dir(out).glob("*.json"))) == 2
    with pytest.raises(FedlabError, match="--resume"):
        run_audit(tiny_grid(models=["k"]), out, progress=False)
    monkeypatch.setattr(audit_run, "run_task", real)
    run_audit(tiny_grid(models=["k"]), out, resume=True, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["timings"]["cells_reused"] == 2 and summary["timings"]["cells_computed"] == 2
    assert not checkpoint_dir(out).exists()


def test_resume_with_other_settings_is_refused(finished: Path, tmp_path: Path) -> None:
    out = run_audit(tiny_grid(models=["k"], ks=[1], seeds=[0]), tmp_path / "run", progress=False)
    with pytest.raises(FedlabError, match="suppression_limit"):
        run_audit(tiny_grid(models=["k"], ks=[1], seeds=[0], suppression_limit=0.1), out, resume=True)


def test_per_client_mode_on_user_csv(tmp_path: Path) -> None:
    from audits.datasets.load import load_dataset
    from audits.datasets.schema import builtin_dir

    frame = load_dataset("adult").frame.sample(1600, random_state=0)
    frame["site"] = np.where(np.arange(len(frame)) % 2 == 0, "north", "south")
    csv = tmp_path / "adult_sites.csv"
    frame.to_csv(csv, index=False)
    import tomli_w

    spec = tomllib.loads((builtin_dir() / "adult.toml").read_text())
    for key in ("files", "columns", "sep", "comment"):  # now a plain CSV with a header row
        spec.pop(key, None)
    spec["hierarchies"] = {
        col: {"file": str(builtin_dir() / h["file"])} for col, h in spec["hierarchies"].items()
    }
    schema = tmp_path / "schema.toml"
    schema.write_text(tomli_w.dumps(spec))
    grid = tiny_grid(
        dataset="", csv=str(csv), schema_path=str(schema), split_by="site", max_rows=0, models=["k"]
    )
    out = run_audit(grid, tmp_path / "clients", progress=False)
    df = pd.read_csv(out / "results.csv")
    assert sorted(df["client"].unique()) == ["north", "south"]
    assert len(df) == 2 * 2 * 2  # clients x (baseline, k=10) x seeds
    assert (df["n_train_raw"] + df["n_test"] == 800).all()
    assert "site" not in json.loads((out / "summary.json").read_text())["dataset"]["features"]


# --------------------------------------------------------------------------- CLI
CLI_TINY = ["--max-rows", str(ROWS), "--models", "k", "--k", "1,10", "--algorithm", "greedy",
            "--classifier", "logreg", "--seeds", "1", "--jobs", "1", "--quiet"]  # fmt: skip


def _main(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> tuple[int, str, str]:
    """Run `fedlab.cli.main` in-process (its error handling included); (exit code, stdout, stderr)."""
    from fedlab import cli

    monkeypatch.setattr(sys, "argv", ["fedlab", *args])
    monkeypatch.setenv("COLUMNS", "200")
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_smoke_tiny_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    out = tmp_path / "cli-run"
    code, stdout, stderr = _main(["audit", *CLI_TINY, "--out", str(out)], monkeypatch, capsys)
    assert code == 0, stderr
    assert f"run directory: {out}" in stdout
    assert "k=10" in stdout and "baseline" in stdout  # the rich results table
    assert len(pd.read_csv(out / "results.csv")) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "nope"], "unknown dataset 'nope'"),
        (["--k", "0"], "k values"),
        (["--k", "ten"], "--k expects"),
        (["--suppression", "2"], "suppression_limit"),
        (["--t", "1.5"], "t values"),
        (["--classifier", "svm"], "unknown classifier"),
        (["--csv", "missing.csv"], "needs a schema"),
        (["--csv", "missing.csv", "--schema", "missing.toml"], "not found"),
        (["--config", "missing.toml"], "config file missing.toml not found"),
        (["--split-by", "no-such-column", "--max-rows", "500"], "no-such-column"),
        (["--resume"], "--resume needs --out"),
    ],
)
def test_cli_bad_input_one_line_exit_2_no_run_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    out = ["--out", str(tmp_path / "bad")] if "--resume" not in args else []
    code, _, stderr = _main(["audit", *args, *out, "--quiet"], monkeypatch, capsys)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert list(tmp_path.iterdir()) == []  # no run directory, no checkpoint, no temp folder


def test_existing_run_dir_without_resume_is_refused(finished: Path) -> None:
    with pytest.raises(FedlabError, match="already exists"):
        run_audit(tiny_grid(), finished, progress=False)


# --------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_parallel_matches_sequential(finished: Path, tmp_path: Path) -> None:
    par = run_audit(tiny_grid(n_jobs=2), tmp_path / "par", progress=False)
    cols = ["cell_id", "accuracy", "sex_spd", "race_spd", "ncf", "consistency", "suppressed_rows"]
    a = pd.read_csv(finished / "results.csv")[cols].set_index("cell_id").sort_index()
    b = pd.read_csv(par / "results.csv")[cols].set_index("cell_id").sort_index()
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_cli_subprocess_entry_point(tmp_path: Path) -> None:
    """The installed `fedlab` console script, in a fresh process (slow: imports Flower)."""
    out = tmp_path / "sub"
    cmd = [sys.executable, "-c", "from fedlab.cli import main; main()", "audit", *CLI_TINY, "--out", str(out)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    bad = subprocess.run([*cmd[:3], "audit", "--k", "0", "--out", str(tmp_path / "bad")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_cli_default_grid_on_full_adult(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-c", "from fedlab.cli import main; main()", "audit", "--out", str(out), "--quiet"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out / "results.csv")
    assert sorted(df["privacy_model"].unique()) == ["baseline", "k=10", "k=100", "l=2", "t=0.5"]
    assert len(df) == 10 and (df["status"] == "ok").all()
