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
