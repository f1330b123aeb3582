"""A study directory -> `Report`: the sections of `sections` and `panels`, key findings first."""

from __future__ import annotations

from pathlib import Path

from fedlab.report.content import Finding, Report
from fedlab.report.read import Notes
from fedlab.report.study import panels, sections
from fedlab.report.study.read import load_study


def _key_findings(found: list[Finding], limit: int = 12) -> list[Finding]:
    """The most severe findings first, taken in turn from each topic × strategy, so one strategy's
    many significant effects do not crowd out the others' (every finding stays in its section)."""
    order = {"flag": 0, "warn": 1, "good": 2}
    buckets: dict[tuple[int, str, str], list[Finding]] = {}
    for f in found:
        if f.severity in order:
            buckets.setdefault((order[f.severity], f.topic, f.text.split(" ", 1)[0]), []).append(f)
    out: list[Finding] = []
    share = {0: limit // 2, 1: limit // 3, 2: limit}  # flags, then warnings (fairness), then good news
    for level in sorted({k[0] for k in buckets}):
        queues = [q for k, q in buckets.items() if k[0] == level]
        taken = 0
        while any(queues) and len(out) < limit and taken < share[level]:
            for q in queues:
                if q and len(out) < limit and taken < share[level]:
                    out.append(q.pop(0))
                    taken += 1
    return out


def build_study_report(run_dir: Path, notes: Notes, generated: str, version: str) -> Report:
    """The study's report (module docstring of `fedlab.report.study.sections`)."""
    st = load_study(run_dir, notes)
    if st.runs.empty:
        body = []
        key = [Finding("The study has no finished runs.", "warn")]
    else:
        body = [
            sections.conditions_section(st),
            sections.privacy_effects_section(st),
            panels.plots_section(st),
            sections.fairness_section(st),
            sections.strategy_effects_section(st),
            panels.clients_section(st),
            panels.skipped_section(st),
        ]
        body = [s for s in body if s is not None]
        key = _key_findings([f for s in body for f in s.findings])
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
