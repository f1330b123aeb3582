"""Console and report show the same baseline for a difference metric: the signed mean over seeds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from audits.experiment.results import _summarise
from fedlab.cli.audit import _fmt
from fedlab.report.build import build_report
from tests.test_report import make_audit


def test_signed_baseline_same_in_console_table_and_findings(tmp_path: Path) -> None:
    run = make_audit(tmp_path / "audit")
    res = pd.read_csv(run / "results.csv")
    # seeds of opposite sign: signed mean +0.100, mean of |SPD| 0.233 (the old findings' baseline)
    res.loc[res["privacy_model"] == "baseline", "sex_spd"] = [-0.10, 0.30, 0.10]
    res.to_csv(run / "results.csv", index=False)
    console = {c["privacy_model"]: _fmt(c, "sex_spd") for c in _summarise(res)}
    assert console["baseline"].startswith("0.100±") and console["k=100"].startswith("0.450±")

    report = build_report(run)
    table = next(t for t in report.tables() if t.id == "audit-fairness-sex")
    base_row = next(r for r in table.rows if r["privacy_model"] == "baseline")
    assert abs(base_row["sex_spd"]["mean"] - 0.100) < 1e-9
    finding = next(
        f
        for s in report.sections
        for f in s.findings
        if f.values.get("metric") == "sex_spd" and f.values.get("privacy_model") == "k=100"
    )
    assert "(signed mean, privileged − unprivileged) from +0.100 to +0.450" in finding.text, finding.text
    assert finding.values["before"] == base_row["sex_spd"]["mean"]
