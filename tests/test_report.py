"""`fedlab report`: simulation, sweep and audit run directories -> HTML / Markdown / JSON.

Run directories are built here with realistic content (the files `fedlab simulate` and
`fedlab audit` write), so the tests need neither Flower nor the audit data set.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w

from fedlab.report import build_report, render, write_report
from fedlab.report.audit.risk import stats_from_sizes
from fedlab.report.content import Report
from fedlab.report.fmt import cell

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = {"0:original": "original", "1:rotated": "rotated", "2:colour": "colour"}


# ----------------------------------------------------------------------------- builders
def _round(rnd: int, target_acc: float, clients: dict[str, float], fedka: bool, eps: bool) -> dict:
    rec = {
        "strategy": "fedka" if fedka else "fedavg",
        "target": "inverted",
        "seed": 0,
        "round": rnd,
        "clients_ok": 3,
        "clients_failed": 0,
        "failures": [],
        "client_target_acc": clients,
        "client_train": {c: {"num-examples": 290.0, "train-loss": 1.5 / rnd} for c in clients},
        "client_own_acc": {c: 0.5 + 0.1 * rnd for c in clients},
        "target_acc": target_acc,
        "mean_client_target_acc": float(np.mean(list(clients.values()))),
        "group_effect": target_acc - float(np.mean(list(clients.values()))),
        "seconds": 3.0,
    }
    if fedka:
        rec.update(
            voting_acc=0.8, voting_acc_all=0.6, adoption_rate=0.25 * rnd, voting_alpha=0.7, finetune_loss=0.4
        )
        rec.update(majority_rate=0.3 * rnd, majority_acc=0.7)
    if eps:
        rec["epsilon"] = {c: 1.5 * rnd + i for i, c in enumerate(clients)}
    return rec


def make_sim(
    path: Path, strategy: str = "fedka", seed: int = 0, accs=(0.32, 0.25, 0.55), eps: bool = False
) -> Path:
    """A 3-round run: round 2 has negative transfer (global 0.25 < mean client 0.30)."""
    path.mkdir(parents=True)
    fedka = strategy == "fedka"
    cfg = {
        "seed": seed,
        "federation": {"name": "digits", "max_per_domain": 0},
        "training": {
            "strategy": strategy,
            "target": "inverted",
            "rounds": 3,
            "local_steps": 20,
            "batch_size": 64,
            "lr": 0.01,
        },
    }
    (path / "config.toml").write_text(tomli_w.dumps(cfg))
    rounds = []
    for rnd, acc in enumerate(accs, start=1):
        clients = {c: 0.20 + 0.05 * i + 0.05 * rnd for i, c in enumerate(CLIENTS)}
        rec = _round(rnd, acc, clients, fedka, eps)
        rec.update(strategy=strategy, seed=seed)
        rounds.append(rec)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rounds))
    last = rounds[-1]
    summary = {
        "strategy": strategy,
        "target": "inverted",
        "seed": seed,
        "rounds": 3,
        "initial_target_acc": 0.10,
        "final_target_acc": last["target_acc"],
        "final_group_effect": last["group_effect"],
        "final_mean_client_target_acc": last["mean_client_target_acc"],
        "best_round": 3,
        "best_target_acc": max(accs),
        "best_round_note": "best = max over rounds",
        "mean_group_effect": float(np.mean([r["group_effect"] for r in rounds])),
        "final_voting_acc": last.get("voting_acc"),
        "final_adoption_rate": last.get("adoption_rate"),
        "final_client_target_acc": last["client_target_acc"],
        "final_client_own_acc": last["client_own_acc"],
        "federation": "digits",
        "domains": ["original", "rotated", "inverted", "colour"],
        "clients": [{"id": i, "domain": d, "train": 290, "test": 70} for i, d in enumerate(CLIENTS.values())],
        "target_pool": 289,
        "target_test": 70,
        "seconds": 9.0,
        "fedlab_version": "0.1.0",
    }
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "model.pt").write_bytes(b"weights")
    return path


def make_sweep(path: Path) -> Path:
    from fedlab.runs.sweep import aggregate_table, run_row

    path.mkdir(parents=True)
    rows = []
    for strategy, accs in (
        ("fedavg", [(0.3, 0.25, 0.40), (0.3, 0.3, 0.42)]),
        ("fedka", [(0.3, 0.5, 0.60), (0.3, 0.5, 0.62)]),
    ):
        for seed, acc in enumerate(accs):
            run = make_sim(path / f"{strategy}-inverted-s{seed}", strategy, seed, acc)
            rows.append(run_row(json.loads((run / "summary.json").read_text())))
    runs = pd.DataFrame(rows)
    table = aggregate_table(runs)
    runs.to_csv(path / "runs.csv", index=False)
    table.to_csv(path / "table.csv", index=False)
    summary = {
        "kind": "sweep",
        "targets": ["inverted"],
        "strategies": ["fedavg", "fedka"],
        "seeds": [0, 1],
        "table": table.to_dict("records"),
    }
    (path / "summary.json").write_text(json.dumps(summary))
    return path


MODELS = [  # label, family, k, l, t, sex SPD per seed, accuracy per seed, class-size histogram
    ("baseline", "baseline", 1, None, None, [0.355, 0.365, 0.36], [0.870, 0.872, 0.871], None),
    ("k=10", "k", 10, None, None, [0.355, 0.375, 0.365], [0.865, 0.866, 0.8655], {"10": 30, "40": 10}),
    ("k=100", "k", 100, None, None, [0.445, 0.455, 0.45], [0.850, 0.852, 0.851], {"120": 5}),
    ("l=2", "l", 1, 2, None, [0.36, 0.37, 0.365], [0.868, 0.869, 0.8685], {"2": 10, "3": 5, "200": 2}),
]


def make_audit(path: Path, failed: bool = False) -> Path:
    path.mkdir(parents=True)
    rows = []
    for label, family, k, l, t, spd, acc, hist in MODELS:  # noqa: E741
        for seed in (0, 1, 2):
            row = {
                "cell_id": f"all__{label}__s{seed}",
                "client": "all",
                "privacy_model": label,
                "family": family,
                "k": k,
                "l": l,
                "t": t,
                "algorithm": "none" if family == "baseline" else "optimal",
                "classifier": "hgb",
                "seed": seed,
                "status": "ok",
                "n_train_raw": 700,
                "n_train": 650,
                "n_test": 300,
                "suppressed_rows": 0 if hist is None else 50 + 10 * seed,
                "suppressed_fraction": 0.0 if hist is None else (50 + 10 * seed) / 700,
                "anon_height": 0 if hist is None else k // 10 + 2,
                "anon_loss": None if hist is None else 0.1 * k**0.3,
                "anon_discernibility": None,
                "anon_avg_class_size": None if hist is None else 20.0 + k,
                "anon_seconds": 0.5,
                "anon_levels": "{}",
                "accuracy": acc[seed],
                "balanced_accuracy": acc[seed] - 0.1,
                "f1": acc[seed] - 0.2,
                "roc_auc": acc[seed] + 0.05,
                "positive_rate": 0.2,
                "sex_spd": spd[seed],
                "sex_disparate_impact": 0.30 + 0.01 * seed,
                "sex_eq_opp_diff": 0.05,
                "sex_fpr_diff": 0.06,
                "sex_avg_odds_diff": 0.055,
                "sex_eq_odds_diff": 0.06,
                "sex_ppv_diff": -0.01,
                "sex_acc_diff": -0.1,
                "consistency": 0.92 + 0.001 * k,
                "ncf": 0.11,
                "asf": 0.10,
                "alf": 0.05,
                "zero_distance_pairs": 0.0,
                "fit_seconds": 1.0,
                "eval_seconds": 1.0,
                "anon_class_sizes": json.dumps(hist) if hist else None,
                "raw_class_sizes": json.dumps({"1": 300, "2": 100, "5": 20}),
            }
            rows.append(row)
    if failed:
        rows[-1].update(
            status="failed: no solution within the suppression limit", accuracy=None, sex_spd=None
        )
    pd.DataFrame(rows).to_csv(path / "results.csv", index=False)
    grid = {
        "dataset": "adult",
        "models": ["k", "l"],
        "ks": [1, 10, 100],
        "ls": [2],
        "algorithms": ["optimal"],
        "classifiers": ["hgb"],
        "seeds": [0, 1],
        "suppression_limit": 0.2,
        "test_size": 0.3,
    }
    (path / "config.toml").write_text(tomli_w.dumps(grid))
    summary = {
        "fedlab_version": "0.1.0",
        "created": "2026-01-01T00:00:00+00:00",
        "command": ["fedlab", "audit", "--out", str(path)],
        "grid": grid,
        "privacy_models": [m[0] for m in MODELS],
        "dataset": {
            "name": "adult",
            "rows": 1000,
            "positive_rate": 0.25,
            "target": "salary-class",
            "positive_label": ">50K",
            "quasi_identifiers": ["age", "education", "sex"],
            "sensitive": "salary-class",
            "protected": {"sex": "Male"},
            "clients": {"all": 1000},
        },
    }
    (path / "summary.json").write_text(json.dumps(summary))
    return path


# ----------------------------------------------------------------------------- helpers
def _all_text(report: Report) -> tuple[str, str, dict]:
    md = render(report, "md")
    page = html.unescape(render(report, "html"))
    data = json.loads(render(report, "json"))
    return md, page, data


def _assert_formats_agree(report: Report) -> None:
    """Every table cell and every finding reads the same in Markdown, HTML and JSON."""
    md, page, data = _all_text(report)
    for sec in data["sections"]:
        for t in sec["tables"]:
            for row in t["rows"]:
                for col in t["columns"]:
                    shown = cell(row.get(col["key"]), col["fmt"])
                    assert shown in page, (t["id"], col["key"], shown)
                    assert shown.replace("|", "\\|") in md, (t["id"], col["key"], shown)
        for f in sec["findings"]:
            assert f["text"] in md and f["text"] in page
    for f in data["key_findings"]:
        assert f["text"] in md and f["text"] in page
    svgs = page.count('<svg data-plot="')
    assert svgs == sum(len(s["plots"]) for s in data["sections"]) > 0


# ----------------------------------------------------------------------------- simulation
def test_simulation_report_content_and_formats_agree(tmp_path: Path) -> None:
    run = make_sim(tmp_path / "run", eps=True)
    report = build_report(run)
    assert report.kind == "simulation" and report.missing == []
    texts = [f.text for f in report.key_findings]
    assert texts[0] == (
        "Final accuracy of the global model on target inverted: 55.0% after 3 round(s) "
        "(initial model: 10.0%)."
    )
    voting = next(f.text for s in report.sections if s.id == "voting" for f in s.findings)
    assert voting == (
        "Round 3: 90.0% of the target pool reached a strict-majority vote (70.0% correct); the most "
        "confident 75.0% of the pool were adopted, 80.0% correct (plain vote on all samples: 60.0%)."
    )
    neg = next(t for t in texts if t.startswith("Negative transfer"))
    assert "1 of 3 round(s) (round 2)" in neg and "-10.0 pp in round 2" in neg
    ids = [p.id for p in report.plots()]
    assert ids == ["sim-target-acc", "sim-group-effect", "sim-voting", "sim-client-own-acc", "sim-epsilon"]
    rounds = next(t for t in report.tables() if t.id == "sim-rounds")
    assert rounds.row_status == ["", "bad", ""]  # negative transfer highlighted
    eps = next(f for s in report.sections if s.id == "privacy" for f in s.findings)
    assert "ε = 6.500 (client 2:colour)" in eps.text
    assert "fedlab simulate --config" in report.reproduce
    _assert_formats_agree(report)


def _with_ge_intervals(run: Path, halves: list[float]) -> None:
    """Give every round of `make_sim`'s run a Group Effect interval of ± half around its value."""
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for rec, half in zip(lines, halves, strict=True):
        rec["group_effect_ci"] = [rec["group_effect"] - half, rec["group_effect"] + half]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


@pytest.mark.parametrize("half, flagged", [(0.15, False), (0.05, True)])
def test_single_run_negative_transfer_needs_the_test_row_interval_below_zero(
    tmp_path: Path, half: float, flagged: bool
) -> None:
    """Round 2's Group Effect is −10 pp: negative transfer only when its interval over the 70 test
    rows (±15 pp: includes 0; ±5 pp: below 0) says so — in the findings, the table and the plot."""
    run = make_sim(tmp_path / "run")
    _with_ge_intervals(run, [0.02, half, 0.02])
    report = build_report(run)
    ge = next(s for s in report.sections if s.id == "group-effect")
    texts = [f.text for f in ge.findings]
    negative = [f for f in ge.findings if f.text.startswith("Negative transfer")]
    assert bool(negative) is flagged
    if flagged:
        assert negative[0].severity == "flag"
        assert "1 of 3 round(s) (round 2)" in negative[0].text and "interval over the 70" in negative[0].text
    else:
        dip = next(f for f in ge.findings if "dipped below 0" in f.text)
        assert dip.severity == "info" and dip.text.startswith("No negative transfer beyond test-row noise")
        assert "1 of 3 round(s) (worst -10.0 pp in round 2)" in dip.text
    final = ge.findings[-1]
    assert final.text.startswith("Final Group Effect") and final.severity == "info"
    assert "95 % interval over the 70 target test rows" in final.text, texts
    rounds = next(t for t in report.tables() if t.id == "sim-rounds")
    assert rounds.row_status == ["", "bad" if flagged else "", ""]
    assert rounds.rows[1]["group_effect_ci"] == f"[{-10 - 100 * half:+.1f}, {-10 + 100 * half:+.1f}] pp"
    plot = next(p for p in report.plots() if p.id == "sim-group-effect")
    assert "whole whisker lies below 0" in plot.caption
    assert plot.panels[0].series[0].std == pytest.approx([0.02, half, 0.02])
    _assert_formats_agree(report)


def test_sweep_report_compares_strategies(tmp_path: Path) -> None:
    report = build_report(make_sweep(tmp_path / "sweep"))
    assert report.kind == "sweep" and report.missing == []
    table = next(t for t in report.tables() if t.id == "sweep-table")
    fedka = next(r for r in table.rows if r["strategy"] == "fedka")
    assert cell(fedka["final_target_acc"], "mean_std_pct1") == "61.0 ± 1.4%"
    best = report.key_findings[0].text
    assert best == (
        "Target inverted: fedka vs fedavg, final accuracy: gain +20.0 pp (95% CI +20.0 to +20.0); "
        "2/2 seeds won."
    )
    assert report.key_findings[0].exceeds_spread is True
    paired = next(t for t in report.tables() if t.id == "sweep-paired")
    assert cell(paired.rows[0]["final"], "ci_pp1") == "+20.0 pp [+20.0, +20.0] 2/2"
    ge = next(t for t in report.tables() if t.id == "sweep-table").columns[5]
    assert ge.fmt == "mean_std_pp1"  # Group Effect in percentage points everywhere
    assert {p.id for p in report.plots()} == {"sweep-final-acc", "sweep-curves", "sweep-group-effect"}
    _assert_formats_agree(report)


def test_sweep_report_shows_the_majority_class_rate_and_warns_about_near_constant_models(
    tmp_path: Path,
) -> None:
    """The target's majority-class rate (from the runs' summaries) sits beside every accuracy, and a
    warning names the strategies whose mean final accuracy does not beat that constant beyond its
    2-SE noise on the 70 test rows (fedka, 61 %) or falls below it (fedavg, 41 %): it leads the key
    findings, next to the paired claim it qualifies."""
    sweep = make_sweep(tmp_path / "sweep")
    for summary in sweep.glob("*/summary.json"):
        data = json.loads(summary.read_text())
        summary.write_text(json.dumps({**data, "target_majority_rate": 0.6}))
    report = build_report(sweep)
    table = next(t for t in report.tables() if t.id == "sweep-table")
    assert [c.key for c in table.columns][3] == "majority" and {r["majority"] for r in table.rows} == {0.6}
    warn = next(f for f in report.key_findings if f.topic == "comparison" and f.severity == "warn")
    assert warn.text == (
        "Target inverted, by mean final accuracy: fedka no better than always predicting the majority "
        "class; fedavg below that constant predictor (60.0% ± 11.7 pp, 2 SE on the test split). Accuracy "
        "differences among such rows are differences between near-constant predictors."
    )
    assert report.key_findings[0] is warn and report.key_findings[1].exceeds_spread is True
    _assert_formats_agree(report)


def test_incomplete_simulation_says_what_is_missing(tmp_path: Path) -> None:
    run = make_sim(tmp_path / "run")
    (run / "summary.json").unlink()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])  # cut mid-line
    report = build_report(run)
    missing = " | ".join(report.missing)
    assert "summary.json is missing" in missing
    assert "metrics.jsonl line 3 is truncated" in missing
    assert "has 2 of 3 rounds" in missing
    assert report.key_findings[0].text.startswith(
        "Final accuracy of the global model on target inverted: 25.0%"
    )
    md, page, _ = _all_text(report)
    assert "metrics.jsonl line 3 is truncated" in md and "metrics.jsonl line 3 is truncated" in page


def test_older_run_without_client_metrics(tmp_path: Path) -> None:
    run = make_sim(tmp_path / "run", strategy="fedavg")
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    for r in records:
        r.pop("client_own_acc")
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    report = build_report(run)
    assert any("no client_own_acc (older fedlab?)" in m for m in report.missing)
    assert "sim-client-own-acc" not in [p.id for p in report.plots()]
    assert "sim-voting" not in [p.id for p in report.plots()]


# ----------------------------------------------------------------------------- audit
def test_audit_report_findings_risk_and_formats_agree(tmp_path: Path) -> None:
    report = build_report(make_audit(tmp_path / "audit"))
    assert report.kind == "audit" and report.missing == []
    facts = dict(report.header)
    assert facts["Quasi-identifiers"] == "age, education, sex"
    assert facts["Protected attributes"] == "sex (privileged: Male)"
    assert facts["Suppression limit"] == "20% of training rows" and facts["Seeds"] == "0, 1, 2"
    head = (
        "k=100 raises |SPD for sex| (signed mean, privileged − unprivileged) from +0.360 to +0.450, ×1.25 "
        "— worse, beyond noise (paired 95% CI of the improvement [-0.090, -0.090], 3 seeds)"
    )
    k100 = next(f for f in report.key_findings if f.text.startswith(head))
    assert k100.severity == "flag" and k100.exceeds_spread is True
    within = next(f for s in report.sections for f in s.findings if f.text.startswith("k=10 raises |SPD"))
    assert within.exceeds_spread is False and within.severity == "info"
    assert "within noise" in within.text
    risk = next(t for t in report.tables() if t.id == "audit-risk")
    before = next(r for r in risk.rows if r["table"] == "before")
    assert before["max_risk"] == 1.0 and before["records"] == 300 + 200 + 100
    assert before["share_above"] == pytest.approx(500 / 600)
    k100 = next(r for r in risk.rows if r["table"] == "k=100")
    assert k100["max_risk"] == pytest.approx(1 / 120) and k100["share_above"] == 0.0
    l2 = next(r for r in risk.rows if r["table"] == "l=2")
    assert l2["max_risk"] == 0.5 and risk.row_status[[r["table"] for r in risk.rows].index("l=2")] == "bad"
    ids = [p.id for p in report.plots()]
    assert ids == [
        "fair-sex",
        "utility",
        "individual",
        "anonymization",
        "risk-before-after",
        "risk-class-sizes",
    ]
    assert "fedlab audit --config" in report.reproduce
    _assert_formats_agree(report)


def test_audit_failed_cells_and_missing_results(tmp_path: Path) -> None:
    run = make_audit(tmp_path / "audit", failed=True)
    report = build_report(run)
    assert any("1 of 12 result rows failed" in m for m in report.missing)
    assert "audit-failed" in [t.id for t in report.tables()]
    # an interrupted run: only cells/*.json
    run2 = tmp_path / "partial"
    (run2 / "cells").mkdir(parents=True)
    for i, row in enumerate(pd.read_csv(run / "results.csv").to_dict("records")):
        (run2 / "cells" / f"c{i}.json").write_text(json.dumps({"settings": {}, "row": row}, default=str))
    report2 = build_report(run2)
    missing = " | ".join(report2.missing)
    assert "results.csv and results.parquet are missing" in missing and "summary.json is missing" in missing
    assert report2.kind == "audit" and any(s.id == "fairness-sex" for s in report2.sections)


def test_risk_statistics() -> None:
    st = stats_from_sizes([1, 1, 3, 5])
    assert st["records"] == 10 and st["classes"] == 4 and st["max_risk"] == 1.0
    assert st["avg_risk"] == pytest.approx(0.4)  # mean over records of 1/size = classes / records
    assert st["share_above"] == pytest.approx(0.5)  # records in classes smaller than 5
    assert st["buckets"] == {"1": 2, "2–4": 3, "5–9": 5, "10–24": 0, "25–99": 0, "100+": 0}


def test_json_matches_documented_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "docs" / "report-schema.json").read_text())
    for run in (make_sim(tmp_path / "s", eps=True), make_audit(tmp_path / "a")):
        jsonschema.validate(json.loads(render(build_report(run), "json")), schema)


# ----------------------------------------------------------------------------- CLI
def _fedlab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0"}
    cmd = [sys.executable, "-m", "fedlab.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_cli_missing_dir_is_one_line_exit_2(tmp_path: Path) -> None:
    res = _fedlab("report", str(tmp_path / "nope"), cwd=tmp_path)
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert err == [f"error: run directory {tmp_path / 'nope'} does not exist"]


def test_cli_writes_default_and_rejects_bad_format(tmp_path: Path) -> None:
    run = make_sim(tmp_path / "run")
    res = _fedlab("report", str(run), "--format", "md", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (run / "report.md").read_text().startswith("# Federation report: fedka → target inverted")
    bad = _fedlab("report", str(run), "--format", "pdf", cwd=tmp_path)
    assert (
        bad.returncode == 2 and bad.stderr.strip() == "error: --format must be html, md or json (got 'pdf')"
    )
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    res = _fedlab("report", str(not_a_run), cwd=tmp_path)
    assert res.returncode == 2 and "is not a fedlab run directory" in res.stderr


def test_write_report_is_atomic_and_self_contained(tmp_path: Path) -> None:
    run = make_audit(tmp_path / "audit")
    path, _ = write_report(run, "html")
    assert path == run / "report.html"
    page = path.read_text()
    assert "<script src" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert "<link " not in page and page.count("<svg data-plot=") == 6
    assert not [p for p in run.iterdir() if p.name.startswith(".report")]  # no temp files left
