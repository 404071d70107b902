"""Charts drawn on the server as inline SVG: no script, no CDN, works offline
and in any screen reader that reads <title>."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

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
    rows: list[dict[str, Any]], *, key: str = "at", height: int = 180, zone: str = "UTC"
) -> str:
    """Stacked bars, one per row (hour or day), for the fields in COLOURS.

    Horizontal positions are percentages and there is no viewBox: the chart
    stretches to its box while text keeps its CSS size (12 px), so labels stay
    readable on a 390 px phone, where a scaled 720-unit viewBox drew them at 6 px.
    """
    label = "Timeline of opens and clicks"

    def when(r: dict[str, Any]) -> str:
        """Hours (UTC ISO) in the page's zone; days are already local dates."""
        value = str(r.get(key, ""))
        if key != "at":
            return value
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")

    if not rows:
        return '<p class="empty">No hits yet.</p>'
    fields = list(COLOURS)
    top = max(sum(r.get(f, 0) for f in fields) for r in rows) or 1
    pad_l, pad_b, pad_t = 10.0, 24, 8  # pad_l in percent, the others in px
    plot_w, inner_h = 99.5 - pad_l, height - pad_b - pad_t
    bw = min(plot_w * 0.07, plot_w / len(rows))  # one hour must not fill the chart
    base = pad_t + inner_h
    parts = [
        f'<svg class="chart timeline" width="100%" height="{height}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{label}</title>",
        f'<line x1="{pad_l}%" y1="{base}" x2="99.5%" y2="{base}" class="base" stroke="#444"/>',
        f'<text x="{pad_l - 1}%" y="{pad_t + 10}" text-anchor="end" class="axis">{top}</text>',
        f'<text x="{pad_l - 1}%" y="{base}" text-anchor="end" class="axis">0</text>',
    ]
    for i, r in enumerate(rows):
        x = pad_l + i * bw
        y = float(base)
        tip = ", ".join(f"{r.get(f, 0)} {NAMES[f]}" for f in fields if r.get(f, 0))
        parts.append(f"<g><title>{escape(when(r))}: {escape(tip or 'nothing')}</title>")
        for f in fields:
            n = r.get(f, 0)
            if not n:
                continue
            h = inner_h * n / top
            y -= h
            parts.append(
                f'<rect x="{x + bw * 0.05:.3f}%" y="{y:.1f}" width="{bw * 0.9:.3f}%" '
                f'height="{h:.1f}" fill="{COLOURS[f]}"/>'
            )
        parts.append("</g>")
    first, last = when(rows[0]), when(rows[-1])
    parts.append(
        f'<text x="{pad_l}%" y="{height - 6}" class="axis" data-at="{escape(first)}">'
        f"{escape(first)}</text>"
    )
    if len(rows) > 1:
        parts.append(
            f'<text x="99.5%" y="{height - 6}" text-anchor="end" class="axis" '
            f'data-at="{escape(last)}">{escape(last)}</text>'
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


def heatmap(data: dict[str, Any], *, row: int = 22) -> str:
    """Weekday (rows) x local hour (columns) grid of human opens; columns in
    percent, rows in px, text at its CSS size (see :func:`timeline`)."""
    grid: list[list[int]] = data.get("human_opens") or []
    days: list[str] = data.get("weekdays") or []
    if not grid or not any(any(r) for r in grid):
        return '<p class="empty">No human opens yet.</p>'
    top = max(max(r) for r in grid) or 1
    pad_l, pad_t = 11.0, 18  # percent, px
    col = (100 - pad_l) / 24
    height = pad_t + len(grid) * row + 4
    label = f"Human opens by weekday and hour ({escape(str(data.get('tz', 'UTC')))})"
    parts = [
        f'<svg class="chart heatmap" width="100%" height="{height}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>'
    ]
    for h in range(0, 24, 3):
        parts.append(
            f'<text x="{pad_l + h * col:.2f}%" y="{pad_t - 5}" class="axis">{h:02d}</text>'
        )
    for d, cells in enumerate(grid):
        y = pad_t + d * row
        day = escape(days[d] if d < len(days) else str(d))
        parts.append(
            f'<text x="{pad_l - 1.5}%" y="{y + row * 0.7:.0f}" text-anchor="end" '
            f'class="axis">{day}</text>'
        )
        for h, n in enumerate(cells):
            # Light to dark green; empty cells stay a visible light grey.
            shade, cls = ("#eef1ee", ' class="zero"') if not n else (_green(n / top), "")
            parts.append(
                f'<rect x="{pad_l + h * col:.2f}%" y="{y}" width="{col * 0.88:.2f}%" '
                f'height="{row - 2}" fill="{shade}"{cls}><title>{day} '
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
        '<svg class="rate" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}" '
        'xmlns="http://www.w3.org/2000/svg">'
        '<rect width="100" height="8" fill="#e3e7e3" class="track"/>'
        f'<rect width="{pct:.1f}" height="8" fill="#1b6e3a"/></svg>'
    )
