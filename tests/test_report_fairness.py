"""Every tabular federation report shows group fairness: per round, per client, per attribute, sizes."""

from __future__ import annotations

from fedlab.config import load_simulation_config
from fedlab.report.build import build_report
from fedlab.report.render.markdown import render_md
from fedlab.runs.simulate import simulate
from fedlab.runs.study import with_embedded_adult
from fedlab.runs.sweep import run_sweep

TINY = {
    "training.strategy": "fedavg",
    "training.rounds": 2,
    "training.local_steps": 2,
    "federation.max_per_domain": 200,
}


def test_run_report_has_fairness_per_round_client_and_attribute(tmp_path) -> None:
    cfg = with_embedded_adult(load_simulation_config(None, TINY), tmp_path / "cache")
    run = simulate(cfg, out=tmp_path / "run").run_dir
    report = build_report(run)
    section = next(s for s in report.sections if s.id == "fairness")
    assert "ŷ = '>50K'" in section.intro and "sex = Male" in section.intro
    tables = {t.id: t for t in section.tables}
    assert {"sim-fairness-sex", "sim-fairness-race", "sim-client-fairness"} <= set(tables)
    sex = tables["sim-fairness-sex"]
    assert [r["round"] for r in sex.rows] == [1, 2]
    assert all(
        r["pooled_spd"] is not None and "/" in r["pooled_n"] and "/" in r["target_n"] for r in sex.rows
    )
    clients = tables["sim-client-fairness"]
    assert len(clients.rows) == 4 and all("/" in r["n__sex"] for r in clients.rows)
    assert section.plots and "Final pooled SPD of P(ŷ = '>50K') for sex" in section.findings[0].text


def test_sweep_report_has_final_fairness_and_no_placeholder(tmp_path) -> None:
    cfg = with_embedded_adult(
        load_simulation_config(None, {**TINY, "training.rounds": 1}), tmp_path / "cache"
    )
    out, _, _ = run_sweep(
        cfg, targets=[""], strategies=["fedavg", "fedprox"], seeds=[0, 1], out=tmp_path / "sw"
    )
    report = build_report(out)
    fairness = next(s for s in report.sections if s.id == "fairness").tables[0]
    assert {r["strategy"] for r in fairness.rows} == {"fedavg", "fedprox"}
    assert all(r["seeds"] == 2 and r["pooled__sex"]["mean"] is not None for r in fairness.rows)
    md = render_md(report)
    assert "{comparison" not in md and "&lt;run>" not in md and "`fedlab report" in md
    paired = next(s for s in report.sections if s.id == "paired").tables[0]
    for row in paired.rows:  # a GE ratio is shown only when FedAvg's GE interval excludes 0
        base = row["ge_baseline"]
        excludes = base["ci_low"] is not None and (base["ci_low"] > 0 or base["ci_high"] < 0)
        if not excludes:
            assert row["ge_ratio"]["mean"] is None and "unbounded" in row["ge_ratio"]["note"]
