"""Charts drawn on the server as inline SVG: no script, no CDN, works offline
and in any screen reader that reads <title>."""

from __future__ import annotations

from html import escape
from typing import Any

# Colours chosen for >= 3:1 contrast against the white page (WCAG 1.4.11).
COLOURS = {
    "human_opens": "#1b6e3a",
    "human_clicks": "#0b4f9c",
    "machine_opens": "#8a5a00",
    "other_opens": "#6b6b6b",
    "other_clicks": "#9b2c2c",
}
NAMES = {
    "human_opens": "human opens",
    "human_clicks": "human clicks",
    "machine_opens": "machine prefetches",
    "other_opens": "scanner/bot/self opens",
    "other_clicks": "scanner/bot/self clicks",
}


def timeline(
    rows: list[dict[str, Any]], *, key: str = "at", width: int = 720, height: int = 180
) -> str:
    """Stacked bars, one per row (hour or day), for the fields in COLOURS."""
    label = "Timeline of opens and clicks"
    if not rows:
        return '<p class="empty">No hits yet.</p>'
    fields = list(COLOURS)
    top = max(sum(r.get(f, 0) for f in fields) for r in rows) or 1
    pad_l, pad_b, pad_t = 36, 24, 8
    inner_w, inner_h = width - pad_l - 4, height - pad_b - pad_t
    bw = min(48.0, max(2.0, inner_w / len(rows)))  # one hour must not fill the chart
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{label}</title>",
        f'<line x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - 4}" y2="{pad_t + inner_h}" '
        'stroke="#444"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 10}" text-anchor="end" class="axis">{top}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + inner_h}" text-anchor="end" class="axis">0</text>',
    ]
    for i, r in enumerate(rows):
        x = pad_l + i * bw
        y = pad_t + inner_h
        tip = ", ".join(f"{r.get(f, 0)} {NAMES[f]}" for f in fields if r.get(f, 0))
        parts.append(f"<g><title>{escape(str(r.get(key, '')))}: {escape(tip or 'nothing')}</title>")
        for f in fields:
            n = r.get(f, 0)
            if not n:
                continue
            h = inner_h * n / top
            y -= h
            parts.append(
                f'<rect x="{x + 0.5:.1f}" y="{y:.1f}" width="{max(bw - 1, 1):.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[f]}"/>'
            )
        parts.append("</g>")
    first, last = str(rows[0].get(key, ""))[:16], str(rows[-1].get(key, ""))[:16]
    parts.append(f'<text x="{pad_l}" y="{height - 6}" class="axis">{escape(first)}</text>')
    if len(rows) > 1:
        parts.append(
            f'<text x="{width - 4}" y="{height - 6}" text-anchor="end" class="axis">'
            f"{escape(last)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def legend() -> str:
    items = "".join(
        f'<li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true">'
        f'<rect width="10" height="10" fill="{c}"/></svg>{NAMES[f]}</li>'
        for f, c in COLOURS.items()
    )
    return f'<ul class="legend">{items}</ul>'


def heatmap(data: dict[str, Any], *, cell: int = 24) -> str:
    """Weekday (rows) x local hour (columns) grid of human opens."""
    grid: list[list[int]] = data.get("human_opens") or []
    days: list[str] = data.get("weekdays") or []
    if not grid or not any(any(row) for row in grid):
        return '<p class="empty">No human opens yet.</p>'
    top = max(max(row) for row in grid) or 1
    pad_l, pad_t = 40, 18
    width, height = pad_l + 24 * cell + 4, pad_t + len(grid) * cell + 4
    label = f"Human opens by weekday and hour ({escape(str(data.get('tz', 'UTC')))})"
    parts = [
        f'<svg class="chart heatmap" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>'
    ]
    for h in range(0, 24, 3):
        parts.append(
            f'<text x="{pad_l + h * cell + 2}" y="{pad_t - 5}" class="axis">{h:02d}</text>'
        )
    for d, row in enumerate(grid):
        y = pad_t + d * cell
        parts.append(
            f'<text x="{pad_l - 6}" y="{y + cell * 0.7:.0f}" text-anchor="end" '
            f'class="axis">{escape(days[d] if d < len(days) else str(d))}</text>'
        )
        for h, n in enumerate(row):
            # Light to dark green; empty cells stay a visible light grey.
            shade = "#eef1ee" if not n else _green(n / top)
            parts.append(
                f'<rect x="{pad_l + h * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="{shade}"><title>{escape(days[d] if d < len(days) else "")} '
                f"{h:02d}:00 — {n} human open{'s' if n != 1 else ''}</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _green(x: float) -> str:
    lo, hi = (198, 232, 206), (20, 90, 45)
    r, g, b = (round(a + (c - a) * x) for a, c in zip(lo, hi, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def bar(value: float, *, label: str) -> str:
    """A small horizontal bar for a rate (0..1)."""
    pct = max(0.0, min(1.0, value)) * 100
    return (
        f'<svg class="rate" viewBox="0 0 100 8" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg"><rect width="100" height="8" fill="#e3e7e3"/>'
        f'<rect width="{pct:.1f}" height="8" fill="#1b6e3a"/></svg>'
    )
