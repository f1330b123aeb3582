"""The HTML report in a real browser: every plot is there and the page logs no errors.

Runs headless Chromium twice per page: ``--dump-dom`` (the DOM after scripts ran) with
console logging on stderr. A page with a deliberate error first proves that this
Chromium build reports console errors the way we scan for them, so a silent browser
cannot make the test pass vacuously. Skipped when no ``chromium`` is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import make_audit, make_sim, make_sweep

from fedlab.report import write_report

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)
ERROR_PATTERNS = re.compile(
    r"Uncaught|CONSOLE\(\d+\).*(error|Error)|console\.error|SyntaxError|ReferenceError|TypeError"
)


def _chromium(page: Path, profile: Path) -> tuple[str, str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=3000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return res.stdout, res.stderr


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ERROR_PATTERNS.search(line)]


def test_error_detection_works(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    dom, log = _chromium(page, tmp_path / "profile")
    assert "<p>x</p>" in dom
    assert _console_errors(log), f"chromium did not log the deliberate error; stderr was:\n{log[-2000:]}"


@pytest.mark.parametrize("kind", ["simulation", "sweep", "audit"])
def test_report_renders_without_errors(tmp_path: Path, kind: str) -> None:
    make = {"simulation": lambda p: make_sim(p, eps=True), "sweep": make_sweep, "audit": make_audit}[kind]
    path, report = write_report(make(tmp_path / "run"), "html")
    dom, log = _chromium(path, tmp_path / "profile")
    expected = [p.id for p in report.plots()]
    found = re.findall(r'<svg data-plot="([^"]+)"', dom)
    assert found == expected and expected
    for plot in expected:  # each SVG really holds drawn content, not an empty shell
        body = dom.split(f'data-plot="{plot}"', 1)[1].split("</svg>", 1)[0]
        assert body.count("<path") > 5, plot
    assert not _console_errors(log), _console_errors(log)
    # the sortable-table script ran: it makes every header focusable
    headers = dom.count("<th ")
    assert headers > 0 and dom.count('tabindex="0"') >= headers
