"""Audit findings that are true: guarded disparate impact, merged identical cells, escaping, signs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fedlab.report.audit import findings as fnd
from fedlab.report.content import Finding, Report, Section
from fedlab.report.render.markdown import render_md


class _Cell:
    def __init__(self, label: str, family: str, values: dict[str, list[float]], levels: str = "") -> None:
        self.keys = {"privacy_model": label, "family": family, "algorithm": "greedy", "classifier": "hgb",
                     "client": "all"}  # fmt: skip
        self.rows = pd.DataFrame({**values, "anon_levels": [levels] * len(next(iter(values.values())))})

    @property
    def label(self) -> str:
        return self.keys["privacy_model"]

    def values(self, col: str) -> np.ndarray:
        return self.rows[col].to_numpy(dtype=float) if col in self.rows else np.array([])


class _Audit:
    def __init__(self, cells: list[_Cell]) -> None:
        self.cells = cells

    def baseline(self, c: _Cell) -> _Cell:
        return self.cells[0]

    def subject(self, c: _Cell) -> str:
        return c.label


def _finding(label: str, metric: str, before: float, after: float) -> Finding:
    values = {"metric": metric, "privacy_model": label, "algorithm": "greedy", "classifier": "hgb",
              "client": "all", "before": before, "after": after}  # fmt: skip
    return Finding(
        f"{label} raises x — beyond the seed spread (±0.01).", "flag", "fairness:sex", True, values
    )


def test_di_near_zero_rates_never_headlines() -> None:
    base = _Cell("baseline", "baseline", {"sex_sr_priv": [0.02, 0.03], "sex_sr_unpriv": [0.001, 0.002]})
    k10 = _Cell("k=10", "k", {"sex_sr_priv": [0.03, 0.03], "sex_sr_unpriv": [0.02, 0.03]})
    out = fnd.truthful(_Audit([base, k10]), "sex", [_finding("k=10", "sex_disparate_impact", 0.08, 0.8)])
    assert out[0].exceeds_spread is False and out[0].severity == "info"
    assert "below 0.05" in out[0].text


def test_di_uses_ratio_of_mean_rates() -> None:
    base = _Cell("baseline", "baseline", {"sex_sr_priv": [0.4, 0.6], "sex_sr_unpriv": [0.2, 0.2]})
    k10 = _Cell("k=10", "k", {"sex_sr_priv": [0.5, 0.5], "sex_sr_unpriv": [0.25, 0.35]})
    out = fnd.truthful(_Audit([base, k10]), "sex", [_finding("k=10", "sex_disparate_impact", 0.0, 0.0)])
    assert out[0].values["before"] == 0.2 / 0.5 and abs(out[0].values["after"] - 0.6) < 1e-12
    assert "ratio of mean selection rates" in out[0].text


def test_identical_anonymizations_merge_into_one_finding() -> None:
    base = _Cell("baseline", "baseline", {"sex_spd": [0.1, 0.1]})
    a = _Cell("k=25", "k", {"sex_spd": [0.2, 0.2]}, levels='{"age": 2}')
    b = _Cell("k=50", "k", {"sex_spd": [0.2, 0.2]}, levels='{"age": 2}')
    out = fnd.truthful(
        _Audit([base, a, b]),
        "sex",
        [_finding("k=25", "sex_spd", 0.1, 0.2), _finding("k=50", "sex_spd", 0.1, 0.2)],
    )
    assert len(out) == 1 and "k=50" in out[0].text


def test_sign_sentence_follows_favourable_label() -> None:
    assert "favours the privileged" in fnd.sign_sentence({"schema": {"positive_label": ">50K"}})
    text = fnd.sign_sentence({"schema": {"positive_label": 1, "favourable_label": 0}})
    assert "unfavourable" in text


def test_markdown_escapes_html_in_names() -> None:
    sec = Section("s", "Group fairness: <script>x</script>", "intro <b>bold</b> and class size < 5")
    md = render_md(Report("audit", "t <img src=x>", "r", "g", "1", None, [], "cmd", [], [sec]))
    assert "<script>" not in md and "<img" not in md and "<b>" not in md and "class size < 5" in md


def test_dollar_and_backslash_names_do_not_crash_plots() -> None:
    from fedlab.report.content import Panel, PlotSpec, Series
    from fedlab.report.render.plots import render_svg

    panel = Panel("SPD for $income\\ \\frac", "k", "$x$", [Series("a$b\\c", [1, 10], [0.1, 0.2])])
    svg = render_svg(PlotSpec("p", "title $", [panel]))
    assert "<svg" in svg


def test_a_client_beating_the_global_model_by_a_few_test_rows_is_not_a_warning() -> None:
    """57 test rows: a 7 pp lead is four predictions; the run's paired interval over the rows decides
    whether the report warns, and the sentence carries the interval."""
    from fedlab.report.sim.findings import accuracy_findings

    summary = {"final_target_acc": 0.877, "target": "Amer-Indian-Eskimo", "target_test": 57}
    last = {"round": 10, "client_target_acc": {"0:White": 0.86, "1:Black": 0.947}}

    def beat(ci: object) -> object:
        rounds = [{**last, "client_vs_global_ci": {"1:Black": ci}}] if ci is not None else [last]
        (finding,) = [f for f in accuracy_findings(summary, rounds) if "beat the global" in f.text]
        return finding

    noise = beat([-0.02, 0.16])
    assert noise.severity == "info" and "within the test rows' noise" in noise.text
    assert "95% CI -2.0 to +16.0 pp over the 57 target test rows" in noise.text
    lead = beat([0.01, 0.13])
    assert lead.severity == "warn" and "beyond the test rows' noise" in lead.text
    old = beat(None)  # a run recorded before the interval: the warning as before
    assert old.severity == "warn" and old.text.endswith("on the target.")
