"""Report -> JSON (documented by docs/report-schema.json).

The JSON is the content model itself: tables carry raw numbers plus the format name the
HTML and Markdown renderers print them with, plots carry the plotted data, not pictures.
"""

from __future__ import annotations

from fedlab.core.rundir import dumps
from fedlab.report.content import Report, to_dict

SCHEMA_ID = "https://fedlab.dev/schemas/report-schema.json"


def render_json(report: Report) -> str:
    data = {"$schema": SCHEMA_ID, **to_dict(report)}
    return dumps(data) + "\n"
