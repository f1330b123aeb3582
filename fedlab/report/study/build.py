"""A study directory -> `Report`: the sections of `sections` and `panels`, key findings first."""

from __future__ import annotations

from pathlib import Path

from fedlab.report.content import Finding, Report
from fedlab.report.read import Notes
from fedlab.report.study import panels, sections
from fedlab.report.study.read import load_study


def build_study_report(run_dir: Path, notes: Notes, generated: str, version: str) -> Report:
    """The study's report (module docstring of `fedlab.report.study.sections`)."""
    st = load_study(run_dir, notes)
    if st.runs.empty:
        body = []
        key = [Finding("The study has no finished runs.", "warn")]
    else:
        body = [
            sections.conditions_section(st),
            sections.fairness_section(st),
            sections.privacy_effects_section(st),
            sections.strategy_effects_section(st),
            panels.plots_section(st),
            panels.clients_section(st),
            panels.skipped_section(st),
        ]
        body = [s for s in body if s is not None]
        found = [f for s in body for f in s.findings]
        order = {"flag": 0, "warn": 1, "good": 2, "info": 3}
        key = sorted((f for f in found if f.severity != "info"), key=lambda f: order[f.severity])[:10]
        if st.skipped:
            key.append(
                Finding(
                    f"{len(st.skipped)} run(s) skipped as invalid combinations (see 'Combinations not run').",
                    "info",
                )
            )
    version_run = st.runs["run"].iloc[0] if len(st.runs) else None
    fedlab_version = None
    if version_run is not None:
        import json

        try:
            fedlab_version = json.loads((run_dir / version_run / "summary.json").read_text()).get(
                "fedlab_version"
            )
        except (OSError, ValueError):
            fedlab_version = None
    return Report(
        "study",
        "Federated privacy × fairness study",
        str(run_dir),
        generated,
        version,
        fedlab_version,
        sections.header(st),
        sections.reproduce(st),
        key,
        body,
        notes.items,
    )
