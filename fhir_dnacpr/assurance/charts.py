"""Small inline SVG charts drawn by our own code: the report must open with no network at all."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#1f5f99", "#d9822b", "#3a8f5c", "#b83b5e", "#7a5ea8", "#5b7083")


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def time_series(
    quarters: Sequence[str],
    counts: Sequence[int],
    percent: Sequence[float | None],
    markers: Sequence[int],
    *,
    title: str,
    bar_label: str,
    line_label: str,
    marker_label: str,
    width: int = 920,
    height: int = 320,
) -> str:
    """Bars (counts per quarter), a line (a percentage, right axis) and markers (e.g. clusters)."""
    left, right, top, bottom = 56, 56, 34, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(quarters), 1)
    step = plot_w / n
    top_count = max(max(counts, default=0), 1)
    scale_max = _nice_ceiling(top_count)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="18" class="chart-title">{escape(title)}</text>',
    ]
    for i in range(5):  # gridlines and left axis
        value = scale_max * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{int(value)}</text>'
        )
        parts.append(f'<text x="{left + plot_w + 6}" y="{y + 4:.1f}" class="axis">{25 * i}%</text>')
    label_every = max(1, n // 24)
    for i, (q, c) in enumerate(zip(quarters, counts, strict=True)):
        x = left + i * step
        h = plot_h * c / scale_max
        parts.append(
            f'<rect class="bar" x="{x + step * 0.12:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{step * 0.76:.1f}" '
            f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{escape(q)}: {c} {escape(bar_label)}</title></rect>'
        )
        if i % label_every == 0:
            cx = x + step / 2
            parts.append(
                f'<text class="axis" x="{cx:.1f}" y="{top + plot_h + 14}" text-anchor="end" '
                f'transform="rotate(-45 {cx:.1f} {top + plot_h + 14})">{escape(q)}</text>'
            )
    points = [
        (left + i * step + step / 2, top + plot_h - plot_h * p / 100)
        for i, p in enumerate(percent)
        if p is not None
    ]
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline class="line" points="{path}" fill="none" stroke="{PALETTE[1]}" stroke-width="2"/>'
        )
    for i, p in enumerate(percent):
        if p is None:
            continue
        x, y = left + i * step + step / 2, top + plot_h - plot_h * p / 100
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{PALETTE[1]}"><title>{escape(quarters[i])}: '
            f"{_fmt(p)}% {escape(line_label)}</title></circle>"
        )
    for i, m in enumerate(markers):
        if m:
            x = left + i * step + step / 2
            parts.append(
                f'<g class="marker"><circle cx="{x:.1f}" cy="{top - 8}" r="{5 + min(m, 6)}" '
                f'fill="{PALETTE[3]}"/>'
                f'<text x="{x:.1f}" y="{top - 4}" text-anchor="middle" class="marker-text">{m}</text>'
                f"<title>{escape(quarters[i])}: {m} {escape(marker_label)}</title></g>"
            )
    legend_y = height - 12
    parts += [
        f'<rect x="{left}" y="{legend_y - 9}" width="12" height="10" fill="{PALETTE[0]}"/>',
        f'<text x="{left + 16}" y="{legend_y}" class="legend">{escape(bar_label)}</text>',
        f'<line x1="{left + 210}" x2="{left + 226}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
        f'stroke="{PALETTE[1]}" '
        'stroke-width="2"/>',
        f'<text x="{left + 230}" y="{legend_y}" class="legend">{escape(line_label)} (right axis)</text>',
        f'<circle cx="{left + 486}" cy="{legend_y - 4}" r="5" fill="{PALETTE[3]}"/>',
        f'<text x="{left + 496}" y="{legend_y}" class="legend">{escape(marker_label)}</text>',
        "</svg>",
    ]
    return "".join(parts)


def grouped_bars(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    width: int = 920,
) -> str:
    """Horizontal grouped bars of percentages (0-100) per category, one colour per series."""
    left, right, top = 190, 40, 54
    bar_h, gap = 8, 12
    group_h = bar_h * len(series) + gap
    height = top + group_h * max(len(categories), 1) + 30
    plot_w = width - left - right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="18" class="chart-title">{escape(title)}</text>',
    ]
    for k, (name, _) in enumerate(series):
        x = 8 + k * ((width - 16) // max(len(series), 1))
        parts.append(f'<rect x="{x}" y="28" width="12" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>')
        parts.append(f'<text x="{x + 16}" y="37" class="legend">{escape(name)}</text>')
    for i in range(5):
        x = left + plot_w * i / 4
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 26}" class="grid"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{height - 12}" class="axis" text-anchor="middle">{25 * i}%</text>'
        )
    for j, category in enumerate(categories):
        y0 = top + j * group_h
        parts.append(
            f'<text x="{left - 8}" y="{y0 + bar_h * len(series) / 2 + 4:.1f}" class="axis" text-anchor="end">'
            f"{escape(category[:28])}</text>"
        )
        for k, (name, values) in enumerate(series):
            value = values[j]
            if value is None:
                continue
            w = plot_w * value / 100
            parts.append(
                f'<rect class="bar" x="{left}" y="{y0 + k * bar_h}" width="{w:.1f}" height="{bar_h - 1}" '
                f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(category)}: {_fmt(value)}% {escape(name)}'
                "</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _nice_ceiling(value: int) -> int:
    """A round axis maximum at or above ``value``: four gridline steps of 1, 2 or 5 × 10^k."""
    step, k = 1, 0
    while step * 4 < value:
        k += 1
        step = (1, 2, 5)[k % 3] * 10 ** (k // 3)
    return step * 4
