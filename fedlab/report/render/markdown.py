"""Report -> GitHub-flavoured Markdown (for pull requests and paper appendices).

Same content as the HTML, minus the pictures: tables print through `fmt.cell` like the
HTML does, and each plot is listed by title with a pointer to the HTML report.
"""

from __future__ import annotations

import re

from fedlab.report.content import Finding, Report, Table
from fedlab.report.fmt import cell

MARK = {"flag": "🔴", "warn": "🟠", "good": "🟢", "info": "•"}


def _esc(text: str) -> str:
    return _text(text).replace("|", "\\|").replace("\n", " ")


def _text(text: str) -> str:
    """Running text: user-supplied names must not inject HTML into a rendered Markdown page
    (a "<" that could open a tag becomes "&lt;"; "class size < 5" stays readable). Inside a
    `code span` nothing is escaped: Markdown prints it literally, so "&lt;" would show as such."""
    parts = re.split(r"(`[^`]*`)", str(text))
    return "".join(p if p.startswith("`") else re.sub(r"<(?=[A-Za-z/!?])", "&lt;", p) for p in parts)


def _finding(f: Finding) -> str:
    return f"- {MARK.get(f.severity, '•')} {_text(f.text)}"


def table_md(t: Table) -> list[str]:
    lines = [f"**{_esc(t.title)}**", ""]
    lines.append("| " + " | ".join(_esc(c.label) for c in t.columns) + " |")
    lines.append("|" + "|".join("---" if c.fmt == "text" else "---:" for c in t.columns) + "|")
    for i, row in enumerate(t.rows):
        cells = [_esc(cell(row.get(c.key), c.fmt)) for c in t.columns]
        status = t.row_status[i] if i < len(t.row_status) else ""
        if status == "bad":
            cells[0] = f"⚠ {cells[0]}"
        elif status in ("small", "trivial"):
            cells[0] = f"{cells[0]} ({'small group' if status == 'small' else 'near-trivial'})"
        lines.append("| " + " | ".join(cells) + " |")
    if t.note:
        lines += ["", f"_{_esc(t.note)}_"]
    return [*lines, ""]


def render_md(report: Report) -> str:
    out = [f"# {_text(report.title)}", ""]
    out += [f"Run directory `{report.run_dir}` · report generated {report.generated}", ""]
    out += ["| | |", "|---|---|"] + [f"| {_esc(k)} | {_esc(v)} |" for k, v in report.header]
    out += ["", f"**Reproduce:** `{report.reproduce}`", ""]
    if report.missing:
        out += ["> **Missing or incomplete:**"] + [f"> - {_esc(m)}" for m in report.missing] + [""]
    out += ["## Key findings", ""] + [_finding(f) for f in report.key_findings] + [""]
    for s in report.sections:
        out += [f"## {_text(s.title)}", ""]
        if s.intro:
            out += [_text(s.intro), ""]
        if s.findings:
            out += [_finding(f) for f in s.findings] + [""]
        if s.plots:
            titles = "; ".join(p.title for p in s.plots)
            out += [f"_Plots in the HTML report: {titles}._", ""]
        for t in s.tables:
            out += table_md(t)
    out += [
        "---",
        f"_fedlab report v{report.report_version}; run made by fedlab {report.fedlab_version or '?'}_",
        "",
    ]
    return "\n".join(out)
