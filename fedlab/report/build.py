"""Run directory -> `Report`: detect what kind of run it is and compute the content once.

Kinds: a single simulation (metrics.jsonl or model.pt), a sweep (summary.json with kind
"sweep" or runs.csv), an audit (results.* or cells/; a `--protocol` audit gets
`fedlab.report.audit.arcolezi2025`'s report). Whatever cannot be read becomes a note in
`Report.missing`; only a directory that is not a fedlab run at all is an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fedlab.core.errors import FedlabError
from fedlab.report.audit import read as audit_run
from fedlab.report.audit import sections as audit_sections
from fedlab.report.audit.findings import key_findings as audit_key_findings
from fedlab.report.audit.risk import THRESHOLD
from fedlab.report.content import Finding, Report
from fedlab.report.read import Notes
from fedlab.report.sim import read as sim_run
from fedlab.report.sim import sections as sim_sections
from fedlab.report.sim import sweep_sections
from fedlab.report.sim.paired import paired_sections

REPORT_VERSION = "1"


def detect_kind(run_dir: Path) -> str:
    if not run_dir.exists():
        raise FedlabError(f"run directory {run_dir} does not exist")
    if not run_dir.is_dir():
        raise FedlabError(f"{run_dir} is not a directory; give a run directory written by fedlab")
    if _summary_kind(run_dir) == "study" or (run_dir / "study.csv").is_file():
        return "study"
    if (run_dir / "runs.csv").is_file() or _summary_kind(run_dir) == "sweep":
        return "sweep"
    if (
        any((run_dir / n).is_file() for n in ("results.csv", "results.parquet"))
        or (run_dir / "cells").is_dir()
    ):
        return "audit"
    if (run_dir / "metrics.jsonl").is_file() or (run_dir / "model.pt").is_file():
        return "simulation"
    if any((p / "metrics.jsonl").is_file() for p in run_dir.iterdir() if p.is_dir()):
        return "sweep"
    summary = run_dir / "summary.json"
    if summary.is_file():
        text = summary.read_text(encoding="utf-8", errors="replace")
        return "audit" if '"privacy_models"' in text or '"grid"' in text else "simulation"
    raise FedlabError(
        f"{run_dir} is not a fedlab run directory (no metrics.jsonl, results.csv, runs.csv or summary.json)"
    )


def _summary_kind(run_dir: Path) -> str | None:
    import json

    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data.get("kind") if isinstance(data, dict) else None


def build_report(run_dir: Path, threshold: float = THRESHOLD, level: str | None = None) -> Report:
    """Compute the report content for any fedlab run directory."""
    run_dir = Path(run_dir)
    kind = detect_kind(run_dir)
    notes = Notes()
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    if kind == "simulation":
        run = sim_run.load_run(run_dir, notes)
        sections = sim_sections.single_sections(run) if run.rounds or run.summary else []
        key = _simulation_key_findings(sections)
        title = f"Federation report: {run.get('strategy') or '?'} → target {run.get('target') or '?'}"
        return Report(
            kind,
            title,
            str(run_dir),
            generated,
            REPORT_VERSION,
            run.get("fedlab_version"),
            sim_sections.header(run),
            sim_sections.reproduce_command(run_dir, run.config),
            key,
            sections,
            notes.items,
        )
    if kind == "study":
        from fedlab.report.study.build import build_study_report

        return build_study_report(run_dir, notes, generated, REPORT_VERSION)
    if kind == "sweep":
        sw = sim_run.load_sweep(run_dir, notes)
        sections = sweep_sections.sweep_sections(sw)
        sections[1:1] = paired_sections(sw.runs)  # after the strategy comparison
        # the paired comparison's claims (the only findings that may call a gain) lead, together with the
        # warnings a reader needs to judge them (a near-constant model); then "no detectable difference"
        found = [f for s in sections for f in s.findings]
        key = sorted(found, key=_sweep_key_rank)[:10]
        version = next((r.get("fedlab_version") for r in sw.sub if r.get("fedlab_version")), None)
        return Report(
            kind,
            "Federation report: strategy comparison",
            str(run_dir),
            generated,
            REPORT_VERSION,
            version,
            sweep_sections.sweep_header(sw),
            sweep_sections.sweep_reproduce(sw),
            key,
            sections,
            notes.items,
        )
    from fedlab.report.audit.arcolezi2025 import build_protocol_report, is_protocol_run

    if is_protocol_run(run_dir):
        return build_protocol_report(run_dir, notes, generated, REPORT_VERSION)
    a = audit_run.load_audit(run_dir, notes)
    sections = audit_sections.sections(a, notes, threshold, level)
    name = (a.summary.get("dataset") or {}).get("name") or (a.grid or {}).get("dataset") or "?"
    key = audit_key_findings(sections) if sections else [Finding("The audit has no results yet.", "warn")]
    return Report(
        "audit",
        f"Privacy vs fairness audit: {name}",
        str(run_dir),
        generated,
        REPORT_VERSION,
        a.summary.get("fedlab_version"),
        audit_sections.header(a),
        audit_sections.reproduce(a),
        key,
        sections,
        notes.items,
    )


def _sweep_key_rank(f: Finding) -> int:
    paired = f.topic == "comparison" and f.exceeds_spread is not None
    if (paired and f.exceeds_spread) or f.severity in ("warn", "flag"):
        return 0
    return 1 if paired else 2


def _simulation_key_findings(sections: list) -> list[Finding]:
    """The headline accuracy sentence, then everything flagged, warned about or good."""
    found = [f for s in sections for f in s.findings]
    key = found[:1] + [f for f in found[1:] if f.severity != "info"]
    return key[:7]
