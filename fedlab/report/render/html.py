"""Report -> one self-contained HTML file (inline CSS, inline SVG plots, tiny inline JS).

Opens offline and from an e-mail attachment: nothing is fetched. Tables are sortable by
clicking a header; cells carry ``data-sort`` with the raw value so sorting is numeric.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from fedlab.report.content import Report
from fedlab.report.fmt import cell, sort_key
from fedlab.report.render.plots import render_many


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("fedlab.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(cell=cell, sort_key=sort_key)
    return env


def render_html(report: Report) -> str:
    plots = report.plots()
    svgs = {p.id: Markup(svg) for p, svg in zip(plots, render_many(plots), strict=True)}
    return _env().get_template("report.html.j2").render(r=report, svgs=svgs)
