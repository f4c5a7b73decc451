"""Server-side SVG pictures: per-day bar charts for the dashboard and an object's neighbourhood graph.

Every label is escaped here, so the returned markup is safe to embed inline; no JavaScript runs.
"""

from __future__ import annotations

import math
from datetime import date
from html import escape

from django.utils.safestring import SafeString, mark_safe

TYPE_COLOURS = {
    "indicator": "#2753c9",
    "campaign": "#8a3ffc",
    "infrastructure": "#0f766e",
    "threat-actor": "#b3261e",
    "intrusion-set": "#c2410c",
    "identity": "#5b6475",
    "sighting": "#a16207",
    "malware": "#be185d",
    "attack-pattern": "#4d7c0f",
}


def _nice_max(value: int) -> int:
    """A round axis maximum >= value (1, 2, 5 × 10^n), so tick labels are whole numbers."""
    if value <= 4:
        return 4
    magnitude = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(series: list[tuple[date, int]], *, title: str, colour: str = "#2753c9") -> SafeString:
    """A per-day bar chart with a labelled y axis (counts) and x axis (dates)."""
    width, height = 420, 190
    left, right, top, bottom = 40, 10, 28, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((n for _, n in series), default=0))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for i in range(5):
        value = peak * i // 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{value}</text>')
    count = max(len(series), 1)
    slot = plot_w / count
    bar = max(slot * 0.7, 1)
    label_every = max(1, math.ceil(count / 7))
    for index, (day, n) in enumerate(series):
        x = left + index * slot + (slot - bar) / 2
        h = plot_h * n / peak if peak else 0
        y = top + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}" rx="1.5">'
            f"<title>{day.isoformat()}: {n}</title></rect>"
        )
        if (count - 1 - index) % label_every == 0:  # always label today, then every n-th day back
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" class="tick" '
                f'text-anchor="middle">{day.strftime("%d %b")}</text>'
            )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" class="axis"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axis"/>'
        f'<text x="{left + plot_w / 2}" y="{height - 3}" class="axis-label" text-anchor="middle">'
        "day (UTC)</text>"
        f'<text x="11" y="{top + plot_h / 2}" class="axis-label" text-anchor="middle" '
        f'transform="rotate(-90 11 {top + plot_h / 2})">count</text>'
        "</svg>"
    )
    return mark_safe("".join(parts))


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def neighbourhood_graph(centre: dict, neighbours: list[dict]) -> SafeString:
    """The object in the middle, its neighbours on a circle, edges labelled with the relation.

    ``centre`` and each neighbour are {"label", "type", "url"?}; neighbours also carry "relation".
    """
    width, height = 460, 300
    cx, cy = width / 2, height / 2
    parts = [
        f'<svg class="graph" viewBox="0 0 {width} {height}" role="img" aria-label="object neighbourhood" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    shown = neighbours[:12]
    radius_x, radius_y = 160, 108
    positions = []
    for index, _ in enumerate(shown):
        angle = -math.pi / 2 + 2 * math.pi * index / max(len(shown), 1)
        positions.append((cx + radius_x * math.cos(angle), cy + radius_y * math.sin(angle)))
    for (x, y), node in zip(positions, shown, strict=True):
        mx, my = (cx + x) / 2, (cy + y) / 2
        parts.append(f'<line x1="{cx}" y1="{cy}" x2="{x:.1f}" y2="{y:.1f}" class="edge"/>')
        parts.append(
            f'<text x="{mx:.1f}" y="{my - 4:.1f}" class="edge-label" text-anchor="middle">'
            f"{escape(_short(node.get('relation', ''), 20))}</text>"
        )
    for (x, y), node in zip(positions, shown, strict=True):
        parts.append(_node(x, y, node, 9))
    parts.append(_node(cx, cy, centre, 14, centre=True))
    if len(neighbours) > len(shown):
        parts.append(
            f'<text x="{width - 8}" y="{height - 8}" class="tick" text-anchor="end">'
            f"+{len(neighbours) - len(shown)} more</text>"
        )
    if not shown:
        parts.append(
            f'<text x="{cx}" y="{cy + 40}" class="tick" text-anchor="middle">no known relationships</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _node(x: float, y: float, node: dict, r: int, *, centre: bool = False) -> str:
    colour = TYPE_COLOURS.get(node.get("type", ""), "#5b6475")
    circle = (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colour}" class="{"centre" if centre else "node"}">'
        f"<title>{escape(node.get('type', ''))}: {escape(node.get('label', ''))}</title></circle>"
        f'<text x="{x:.1f}" y="{y + r + 13:.1f}" class="node-label" text-anchor="middle">'
        f"{escape(_short(node.get('label', '')))}</text>"
    )
    url = node.get("url")
    return f'<a href="{escape(url)}">{circle}</a>' if url else circle
