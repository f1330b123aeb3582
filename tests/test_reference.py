"""Reference rows: `central` (pooled source rows) and `oracle` (+ target labels) beside a sweep."""

from __future__ import annotations

import json
import math

import pandas as pd

from fedlab.config import load_simulation_config
from fedlab.federation.setup import setup_for
from fedlab.learn.training import capped_steps
from fedlab.metrics.comparison import compare
from fedlab.report import build_report
from fedlab.report.render.markdown import render_md
from fedlab.runs.reference import REFERENCES, run_reference, training_rows
from fedlab.runs.sweep import run_sweep

SMALL = {"training.rounds": 2, "training.local_steps": 3, "federation.max_per_domain": 80}


def test_references_train_on_what_they_say_with_the_federations_budget(tmp_path) -> None:
    cfg = load_simulation_config(None, SMALL)
    setup = setup_for(cfg)
    _, y, steps = training_rows(cfg, "central")
    assert len(y) == sum(c.num_train for c in setup.clients)
    t = cfg.training
    assert steps == sum(capped_steps(t.local_steps, c.num_train, t.batch_size, 0) for c in setup.clients)
    _, y_oracle, _ = training_rows(cfg, "oracle")
    assert len(y_oracle) == len(y) + len(setup.target_domain.y_train)
    summary = run_reference(cfg, "central", tmp_path / "central")
    lines = [json.loads(s) for s in (tmp_path / "central" / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in lines] == [1, 2] and all(r["strategy"] == "central" for r in lines)
    assert summary["final_target_acc"] == lines[-1]["target_acc"]
    assert math.isnan(summary["final_group_effect"])
    assert summary["reference"] == REFERENCES["central"] and summary["train_rows"] == len(y)
    again = run_reference(cfg, "central", tmp_path / "again")
    assert again["final_target_acc"] == summary["final_target_acc"]  # same seed, same numbers


def test_a_sweep_compares_references_with_fedavg_paired_by_seed(tmp_path) -> None:
    cfg = load_simulation_config(None, SMALL)
    out, runs, _ = run_sweep(cfg, ["rotated"], ["fedavg", "central", "oracle"], [0, 1], tmp_path / "sw")
    assert set(runs["strategy"]) == {"fedavg", "central", "oracle"} and len(runs) == 6
    assert pd.isna(runs[runs["strategy"] == "central"]["final_group_effect"]).all()
    cells = {c["strategy"]: c for c in compare(runs) if c["target"] == "rotated"}
    assert set(cells) == {"central", "oracle"} and cells["oracle"]["final"].n == 2
    report = build_report(out)
    texts = [f.text for s in report.sections for f in s.findings] + [f.text for f in report.key_findings]
    refs = [t for t in texts if "reference central" in t or "reference oracle" in t]
    assert len({t for t in refs}) == 2  # one line per reference, said as a scale
    said_as_gain = [t for t in texts if ("central" in t or "oracle" in t) and ("gain" in t or "transf" in t)]
    assert said_as_gain == []
    assert not any("highest mean final accuracy central" in t or "accuracy oracle" in t for t in texts)
    assert "client_own_acc" not in render_md(report)  # no "metrics.jsonl has no …" note for references
