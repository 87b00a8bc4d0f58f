"""The report's charts: matplotlib figures saved as SVG and inlined in report.html.

Why matplotlib and SVG, not Vega-Lite: the charts are static, so they need no script to view (a
report opened from a mail attachment, from a bucket's console or with scripts blocked still shows
them), they print, and they stay sharp at any zoom. Vega-Lite would inline about 800 KB of
JavaScript into every report for interaction nobody needs here, and matplotlib is the library a data
engineer already reads. Text stays text (``svg.fonttype: none``), so a chart is 10-30 KB, and ids
are salted with a constant so the same run writes the same bytes. Figures are built with
``matplotlib.figure.Figure``, never pyplot: no global state, no GUI backend.
"""

from __future__ import annotations

import functools
import io
import math

import matplotlib
from matplotlib.figure import Figure

KEPT, DROPPED, CUT = "#3a9a5b", "#b9b9b9", "#d33"
RC = {"svg.fonttype": "none", "svg.hashsalt": "altcap", "font.size": 9, "axes.spines.top": False,
      "axes.spines.right": False}


def chart(draw):
    """A function that draws on a figure and returns it, made to return the figure as an inline
    <svg> element (no XML prolog), all of it under the report's style."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs) -> str:
        out = io.StringIO()
        with matplotlib.rc_context(RC):
            draw(*args, **kwargs).savefig(out, format="svg", metadata={"Date": None}, bbox_inches="tight")
        text = out.getvalue()
        return text[text.index("<svg"):]
    return drawn


def _figure(width: float, height: float) -> tuple[Figure, object]:
    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot()


@chart
def funnel(stages: list[str], passed: list[int], rejected: list[int]) -> str:
    """One bar per stage, top to bottom in run order: passed and rejected stacked."""
    figure, axes = _figure(6.5, 0.3 * len(stages) + 0.8)
    rows = range(len(stages))[::-1]
    axes.barh(rows, passed, color=KEPT, label="passed")
    axes.barh(rows, rejected, left=passed, color=DROPPED, label="rejected")
    for row, kept, dropped in zip(rows, passed, rejected):
        axes.text(kept + dropped, row, f" {kept:,} / {kept + dropped:,}", va="center", fontsize=8)
    axes.set_yticks(list(rows), stages)
    axes.set_xlabel("records")
    axes.margins(x=0.18)
    axes.legend(loc="lower right", frameon=False)
    return figure


@chart
def histogram(title: str, edges: list[float], kept: list[int], dropped: list[int], *, cut: float | None = None,
              ticks: list[tuple[float, str]] | None = None, cut_label: str | None = None) -> str:
    """Kept and dropped counts per bin, stacked, with the cut as a red line."""
    figure, axes = _figure(4.2, 2.2)
    widths = [b - a for a, b in zip(edges, edges[1:])]
    axes.bar(edges[:-1], kept, width=widths, align="edge", color=KEPT, label="kept")
    axes.bar(edges[:-1], dropped, width=widths, bottom=kept, align="edge", color=DROPPED, label="dropped")
    if cut is not None:
        axes.axvline(cut, color=CUT, linewidth=1.5, label=cut_label or f"cut {cut:g}")
    if ticks:
        axes.set_xticks([at for at, _ in ticks], [label for _, label in ticks])
    axes.set_title(title, fontsize=9)
    axes.set_ylabel("samples")
    axes.legend(frameon=False, fontsize=7)
    return figure


@chart
def categories(title: str, labels: list[str], kept: list[int], dropped: list[int]) -> str:
    """Horizontal bars per category, most frequent on top: kept and dropped stacked."""
    figure, axes = _figure(4.2, 0.22 * len(labels) + 0.9)
    rows = range(len(labels))[::-1]
    axes.barh(rows, kept, color=KEPT, label="kept")
    axes.barh(rows, dropped, left=kept, color=DROPPED, label="dropped")
    axes.set_yticks(list(rows), labels)
    axes.set_title(title, fontsize=9)
    axes.legend(frameon=False, fontsize=7)
    return figure


@chart
def code_usage(counts: list[int], codebook: int) -> str:
    """Image codes by how often they occur, most used first (log-log): a healthy VQ codebook's curve
    is flat; codes never used sit at the end, past the line."""
    used = sorted((n for n in counts if n), reverse=True)
    figure, axes = _figure(4.2, 2.2)
    axes.plot(range(1, len(used) + 1), used, color=KEPT, marker="." if len(used) < 50 else None)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.axvline(max(len(used), 1), color=CUT, linewidth=1, label=f"{len(used):,} of {codebook:,} codes used")
    axes.set_xlim(0.8, max(codebook, len(used)) * 1.2)
    axes.set_xlabel("code, by rank")
    axes.set_ylabel("occurrences")
    axes.set_title("image codes", fontsize=9)
    axes.legend(frameon=False, fontsize=7)
    return figure


def perplexity(counts: list[int]) -> float:
    """exp of the entropy of code use: how many codes the tokens effectively use."""
    total = sum(counts)
    return math.exp(-sum(n / total * math.log(n / total) for n in counts if n)) if total else 0.0
