"""A study is a run kind of its own: paired effects by condition, and a report organized by condition."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fedlab.config import load_simulation_config
from fedlab.metrics.study_effects import privacy_effects, strategy_effects
from fedlab.report.build import build_report, detect_kind
from fedlab.report.render.markdown import render_md
from fedlab.runs.study import grid, run_study, with_embedded_adult


def _runs() -> pd.DataFrame:
    rows = []
    for seed in range(4):
        for strategy, bump in (("fedavg", 0.0), ("qfedavg", 0.02)):
            for eps, anon, drop in (
                (None, "none", 0.0),
                (3.0, "none", 0.05),
                (None, "k=10", 0.01 * (seed % 2)),
            ):
                rows.append(
                    {
                        "strategy": strategy,
                        "epsilon_target": eps,
                        "anonymize": anon,
                        "seed": seed,
                        "target_acc": 0.8 + bump - drop + 0.001 * seed,
                    }
                )
    return pd.DataFrame(rows)


def test_privacy_effects_pair_by_seed_against_the_same_strategy_without_privacy() -> None:
    effects = privacy_effects(_runs(), ["target_acc"])
    by = {(e["strategy"], e["epsilon_target"], e["anonymize"]): e["effect"] for e in effects}
    assert set(by) == {(s, e, a) for s in ("fedavg", "qfedavg") for e, a in ((3.0, "none"), (None, "k=10"))}
    dp = by[("qfedavg", 3.0, "none")]
    assert dp.n == 4 and dp.mean == pytest.approx(-0.05) and dp.losses == 4 and dp.direction() < 0
    anon = by[("fedavg", None, "k=10")]
    assert anon.mean == pytest.approx(-0.005) and anon.ties == 2 and not anon.excludes_zero()


def test_strategy_effects_stay_within_one_privacy_condition() -> None:
    effects = strategy_effects(_runs(), ["target_acc"])
    assert {(e["epsilon_target"], e["anonymize"]) for e in effects} == {
        (None, "none"),
        (3.0, "none"),
        (None, "k=10"),
    }
    assert all(e["strategy"] == "qfedavg" and e["effect"].mean == pytest.approx(0.02) for e in effects)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    tiny = {"training.rounds": 1, "training.local_steps": 2, "federation.max_per_domain": 200}
    base = with_embedded_adult(load_simulation_config(None, tiny), tmp / "cache")
    cells = grid(["fedavg", "qfedavg"], [None, 3.0], ["", "k=10"], [0, 1])
    out, _, _ = run_study(base, cells, tmp / "study")
    return out


def test_study_skips_invalid_combinations_explicitly(study) -> None:
    summary = json.loads((study / "summary.json").read_text())
    skipped = {s["run"] for s in summary["skipped"]}
    assert skipped == {f"qfedavg-eps3-{a}-s{s}" for a in ("raw", "k10") for s in (0, 1)}
    assert all("qfedavg" in s["reason"] and "client DP" in s["reason"] for s in summary["skipped"])
    assert not any((study / r).exists() for r in skipped)


def test_report_of_a_study_is_organized_by_condition(study) -> None:
    assert detect_kind(study) == "study"
    report = build_report(study)
    assert report.kind == "study" and not report.missing
    ids = [s.id for s in report.sections]
    assert ids[:5] == ["conditions", "privacy-effects", "plots", "fairness", "strategy-effects"]
    assert "skipped" in ids
    conditions = report.sections[0].tables[0]
    names = [r["condition"] for r in conditions.rows]
    assert names[:2] == ["fedavg · no DP · raw", "fedavg · no DP · k=10"] and len(names) == 6
    assert all(r["seeds"] == 2 for r in conditions.rows)
    assert {"target_balanced_acc", "target_majority_rate", "group_effect", "epsilon_spent"} <= set(
        conditions.rows[0]
    )
    fairness = {t.id for t in next(s for s in report.sections if s.id == "fairness").tables}
    assert fairness == {"study-fairness-sex", "study-fairness-race"}
    sex = next(
        t
        for t in next(s for s in report.sections if s.id == "fairness").tables
        if t.id == "study-fairness-sex"
    )
    assert "P(ŷ = '>50K')" in sex.title and "privileged sex = Male" in sex.title
    assert "/" in sex.rows[0]["pooled_n"]  # group sizes
    privacy = report.sections[1].tables[0]
    assert {r["privacy"] for r in privacy.rows} == {"no DP · k=10", "ε=3 · raw", "ε=3 · k=10"}
    assert all(r["pairs"] == 2 for r in privacy.rows)
    md = render_md(report)
    assert "Combinations not run" in md and "runs.csv" not in md and "{comparison" not in md
    clients = next(s for s in report.sections if s.id == "clients").tables[0]
    anonymized = [r for r in clients.rows if "k=10" in r["condition"]]
    assert anonymized and all(r["achieved_k"] >= 10 for r in anonymized)
