"""Plot specs -> inline SVG strings (matplotlib, Agg, no pyplot).

Each figure is rendered to a standalone ``<svg>`` whose root carries ``data-plot="<id>"``,
so the HTML stays one offline file and tests can count plots. Text stays text
(``svg.fonttype = none``) to keep files small, and every figure gets its own id salt so
clip-path / marker ids of several SVGs in one page never collide.
"""

from __future__ import annotations

import html
import io
import math
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator, PercentFormatter

from fedlab.report.content import Panel, PlotSpec, Series

# Okabe-Ito: distinguishable for colour-blind readers
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999"]
NEGATIVE = "#D55E00"
RC = {
    "text.parse_math": False,  # column / group names with "$" or "\\" are text, not TeX
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def _nan(values: list[Any]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def _colors(spec: PlotSpec) -> dict[str, str]:
    names: dict[str, None] = {}
    for p in spec.panels:
        for s in p.series:
            names.setdefault(s.name, None)
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}


def _positions(panel: Panel) -> dict[str, float]:
    """x position of each category; groups are separated by a gap."""
    pos: dict[str, float] = {}
    x = 0.0
    for g in panel.groups or [{"categories": panel.categories}]:
        for c in g["categories"]:
            pos[c] = x
            x += 1.0
        x += 0.6
    return pos


def _categorical(ax: Any, panel: Panel, colors: dict[str, str]) -> None:
    pos = _positions(panel)
    for s in panel.series:
        _line(ax, s, colors[s.name], [pos[str(v)] for v in s.x])
    ax.set_xticks(list(pos.values()))
    ax.set_xticklabels(
        list(pos), rotation=0 if len(pos) <= 6 else 30, ha="center" if len(pos) <= 6 else "right"
    )
    ax.grid(axis="x", visible=False)
    ax.set_xlim(-0.5, max(pos.values(), default=0.0) + 0.5)
    for g in panel.groups:
        xs = [pos[c] for c in g["categories"]]
        if not xs:
            continue
        ax.annotate(
            g["label"],
            ((min(xs) + max(xs)) / 2, 1.0),
            xycoords=("data", "axes fraction"),
            ha="center",
            va="bottom",
            fontsize=7.5,
            color="#555555",
            style="italic",
        )
        if min(xs) > 0:
            ax.axvline(min(xs) - 0.8, color="#bbbbbb", lw=0.8)


def _line(ax: Any, s: Series, color: str, positions: list[float] | None = None) -> None:
    x, y = (positions if positions is not None else _nan(s.x)), _nan(s.y)
    width = {"main": 2.4, "thin": 1.0}.get(s.style, 1.6)
    ax.plot(
        x,
        y,
        color=color,
        lw=width,
        ls="--" if s.style == "dashed" else "-",
        marker="o",
        ms=3.5 if s.style != "thin" else 2.5,
        alpha=0.8 if s.style == "thin" else 1.0,
        label=s.name,
    )
    if s.std is not None and any(v is not None for v in s.std):
        sd = [0.0 if v is None else float(v) for v in s.std]
        if len(x) < 3:  # a band needs a line to follow; one or two points get error bars
            ax.errorbar(x, y, yerr=sd, fmt="none", ecolor=color, elinewidth=1.2, capsize=4)
        else:
            low = [a - b for a, b in zip(y, sd, strict=True)]
            high = [a + b for a, b in zip(y, sd, strict=True)]
            ax.fill_between(x, low, high, color=color, alpha=0.18, lw=0)


def _bars(ax: Any, panel: Panel, colors: dict[str, str]) -> None:
    series = panel.series
    cats = [str(c) for c in series[0].x] if series else []
    n = max(len(series), 1)
    width = 0.8 / n
    for i, s in enumerate(series):
        pos = [j + (i - (n - 1) / 2) * width for j in range(len(cats))]
        y = _nan(s.y)
        color: Any = colors[s.name]
        if panel.negative_highlight:
            color = [NEGATIVE if v < 0 else colors[s.name] for v in y]
        err = None
        if s.std is not None and any(v is not None for v in s.std):
            err = [0.0 if v is None else float(v) for v in s.std]
        ax.bar(
            pos,
            [0 if math.isnan(v) else v for v in y],
            width=width * 0.95,
            color=color,
            label=s.name,
            yerr=err,
            capsize=3 if err else 0,
            error_kw={"lw": 1},
        )
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels(cats, rotation=0 if sum(len(c) for c in cats) < 60 else 30, ha="center")
    ax.grid(axis="x", visible=False)


def _decorate(ax: Any, panel: Panel) -> None:
    for b in panel.baselines:
        y, sd = b.get("mean", b.get("y")), b.get("std")
        if y is None:
            continue
        ax.axhline(y, color="#555555", ls="--", lw=1.2, label=b.get("label", "baseline"))
        if sd:
            ax.axhspan(y - sd, y + sd, color="#888888", alpha=0.15, lw=0)
    for h in panel.hlines:
        ax.axhline(h["y"], color="#222222", ls=":", lw=0.9)
        if h.get("label"):
            ax.annotate(
                h["label"],
                (1.0, h["y"]),
                xycoords=("axes fraction", "data"),
                ha="right",
                va="bottom",
                fontsize=7,
                color="#444444",
            )
    if panel.negative_highlight:
        lo, hi = ax.get_ylim()
        if lo < 0:
            ax.axhspan(lo, 0, color=NEGATIVE, alpha=0.07, lw=0)
            ax.set_ylim(lo, hi)


def _xaxis(ax: Any, panel: Panel) -> None:
    xs = sorted({float(v) for s in panel.series for v in s.x if v is not None})
    if panel.x_log and xs and min(xs) > 0:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
    if xs and len(xs) <= 12:
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.set_xticklabels([f"{v:g}" for v in xs])
    if len(xs) == 1:  # a single privacy level: give it some room
        span = xs[0] * 0.5 if panel.x_log else max(abs(xs[0]) * 0.2, 0.5)
        ax.set_xlim(xs[0] - span, xs[0] + span)


def _draw(ax: Any, panel: Panel, colors: dict[str, str]) -> None:
    if panel.kind in ("bar", "grouped_bar"):
        _bars(ax, panel, colors)
    elif panel.categories:
        _categorical(ax, panel, colors)
    else:
        for s in panel.series:
            _line(ax, s, colors[s.name])
        _xaxis(ax, panel)
    _decorate(ax, panel)
    if panel.y_percent:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    ax.set_title(panel.title, pad=12 if panel.groups else 6)
    ax.set_xlabel(panel.x_label)
    ax.set_ylabel(panel.y_label)


PANEL_H, TOP, BOTTOM, LEGEND_ROW, LEFT, RIGHT = 2.3, 0.35, 0.55, 0.22, 0.75, 0.2  # inches


def render_svg(spec: PlotSpec) -> str:
    """One plot spec as an inline SVG element (no XML prolog).

    The layout is fixed in inches instead of matplotlib's constrained layout, which draws
    every figure twice and would make the audit report several times slower.
    """
    with matplotlib.rc_context({**RC, "svg.hashsalt": spec.id}):
        n = max(len(spec.panels), 1)
        ncols = max(1, min(spec.ncols, n))
        nrows = math.ceil(n / ncols)
        colors = _colors(spec)
        legend_rows = math.ceil(len(colors) / 4) if len(colors) > 1 or _has_baseline(spec) else 0
        legend_rows += 1 if _has_baseline(spec) and len(colors) % 4 == 0 else 0
        width = 11.0 if ncols > 1 else 8.0
        bottom = BOTTOM + LEGEND_ROW * legend_rows
        height = PANEL_H * nrows + (TOP + 0.45) * (nrows - 1) + TOP + bottom
        fig = Figure(figsize=(width, height))
        fig.subplots_adjust(
            left=LEFT / width,
            right=1 - RIGHT / width,
            top=1 - TOP / height,
            bottom=bottom / height,
            wspace=0.28,
            hspace=(TOP + 0.45) / PANEL_H,
        )
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for i, ax in enumerate(axes.flat):
            if i < len(spec.panels):
                _draw(ax, spec.panels[i], colors)
                ax.yaxis.set_major_locator(MaxNLocator(5))
            else:
                ax.set_visible(False)
        handles: dict[str, Any] = {}
        for ax in axes.flat:
            for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(label, h)
        if legend_rows:
            fig.legend(
                list(handles.values()),
                list(handles),
                loc="lower center",
                ncol=min(4, len(handles)),
                bbox_to_anchor=(0.5, 0.0),
            )
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return _inline(buf.getvalue(), spec)


def _has_baseline(spec: PlotSpec) -> bool:
    return any(p.baselines for p in spec.panels)


def _inline(svg: str, spec: PlotSpec) -> str:
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
    svg = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r"<svg \1", svg, count=1)
    attrs = (
        f'data-plot="{html.escape(spec.id)}" role="img" aria-label="{html.escape(spec.title)}" class="plot"'
    )
    return svg.replace("<svg ", f"<svg {attrs} ", 1)


def render_many(specs: list[PlotSpec]) -> list[str]:
    """Render several figures, in forked worker processes when that is safe and worth it.

    matplotlib is single-threaded, and an audit report has a handful of multi-panel figures,
    so on a multi-core machine a small fork pool roughly halves the wall time. Fork is only
    used on Linux from a single-threaded process (forking a threaded process can deadlock).
    """
    import os
    import sys
    import threading

    workers = min(len(specs), os.cpu_count() or 1, 4)
    if workers < 2 or sys.platform != "linux" or threading.active_count() > 1:
        return [render_svg(s) for s in specs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # biggest figures first so the workers finish together
    order = sorted(range(len(specs)), key=lambda i: -len(specs[i].panels))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        done = dict(zip(order, pool.map(render_svg, [specs[i] for i in order]), strict=True))
    return [done[i] for i in range(len(specs))]
