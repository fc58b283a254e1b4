"""Inline SVG plots: time series as min/max envelopes with a mean line, and a phase timeline.

Pure. Every figure is a fixed number of points whatever the run's length (`downsample`), so a
72-hour 1 Hz series renders as fast as a 3-minute one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from provision.acceptance.timeseries import Envelope, Phase

PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#393b79",
    "#ad494a",
)
W, H = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 60, 12, 22, 30


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo or 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _duration(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def plot(
    title: str, unit: str, envelopes: Sequence[Envelope], start: float, end: float, phases: Sequence[Phase]
) -> str:
    """One chart: per series a translucent min..max band and its mean line; phases shaded behind."""
    series = [e for e in envelopes if e.t]
    lo = min((min(e.lo) for e in series), default=0.0)
    hi = max((max(e.hi) for e in series), default=1.0)
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad
    span_t = (end - start) or 1.0
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (t - start) / span_t * pw

    def y(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * ph

    parts = [
        f'<svg class="plot" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {W} {H}" width="{W}" height="{H}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, p in enumerate(phases):
        x0, x1 = max(x(p.start_s), LEFT), min(x(p.end_s), LEFT + pw)
        if x1 > x0:
            parts.append(
                f'<rect x="{x0:.1f}" y="{TOP}" width="{x1 - x0:.1f}" height="{ph}" '
                f'fill="{PALETTE[i % len(PALETTE)]}" fill-opacity="0.08"/>'
            )
            if x1 - x0 >= 7 * len(p.name):  # a name that does not fit its band is in the timeline legend
                parts.append(f'<text x="{x0 + 3:.1f}" y="{TOP + 11}" class="ph">{escape(p.name)}</text>')
    for v in _nice_ticks(lo, hi):
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" class="yl">{v:g}</text>'
        )
    for v in _nice_ticks(0, span_t, 8):
        parts.append(f'<text x="{x(start + v):.1f}" y="{H - 10}" class="xl">{_duration(v)}</text>')
    parts.append(f'<text x="{LEFT - 52}" y="{TOP - 8}" class="unit">{escape(unit)}</text>')
    for i, e in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        band = [f"{x(t):.1f},{y(v):.1f}" for t, v in zip(e.t, e.hi, strict=True)]
        band += [f"{x(t):.1f},{y(v):.1f}" for t, v in zip(reversed(e.t), reversed(e.lo), strict=True)]
        mean = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(e.t, e.mean, strict=True))
        parts.append(
            f'<g class="series" data-series="{escape(e.name)}"><title>{escape(e.name)}</title>'
            f'<polygon points="{" ".join(band)}" fill="{color}" fill-opacity="0.18" stroke="none"/>'
            f'<polyline points="{mean}" fill="none" stroke="{color}" stroke-width="1.4"/></g>'
        )
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" class="frame"/>')
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(e.name)}</span>'
        for i, e in enumerate(series)
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def timeline(phases: Sequence[Phase], start: float, end: float) -> str:
    """One bar per phase on the run's time axis; names and durations in a legend under it (short
    phases are slivers: labels inside the chart would overprint each other)."""
    span = (end - start) or 1.0
    h, pw = 40, W - LEFT - RIGHT
    parts = [
        f'<svg class="timeline" role="img" aria-label="phases" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {W} {h}" width="{W}" height="{h}"><title>Phases</title>'
    ]
    for i, p in enumerate(phases):
        x0 = LEFT + (p.start_s - start) / span * pw
        w = max((p.end_s - p.start_s) / span * pw, 1.0)
        parts.append(
            f"<g><title>{escape(p.name)}: {_duration(p.end_s - p.start_s)}</title>"
            f'<rect x="{x0:.1f}" y="8" width="{w:.1f}" height="24" fill="{PALETTE[i % len(PALETTE)]}" '
            f'fill-opacity="0.75"/></g>'
        )
    for v in _nice_ticks(0, span, 8):
        parts.append(
            f'<line x1="{LEFT + v / span * pw:.1f}" x2="{LEFT + v / span * pw:.1f}" y1="32" y2="36" '
            'class="grid"/>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(p.name)} '
        f"{_duration(p.end_s - p.start_s)}</span>"
        for i, p in enumerate(phases)
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'
