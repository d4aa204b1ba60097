"""The duration/cost chart of a task page, drawn by the server as SVG (no script, no styles:
classes and presentation attributes only, which the CSP allows)."""

from __future__ import annotations

from bassi_schedd.core.records import RunRow
from bassi_schedd.web.html import esc, money

WIDTH, HEIGHT, PAD = 640, 180, 28


def duration_cost_svg(runs: list[RunRow]) -> str:
    """Bars: duration of each finished run (oldest left), coloured by status; dots joined by a
    line: its cost. Empty string when no run has a duration."""
    runs = [r for r in runs if r.duration_s is not None]
    if not runs:
        return ""
    runs = list(reversed(runs))  # the caller gives newest first
    max_d = max(r.duration_s or 0.0 for r in runs) or 1.0
    costs = [r.cost_usd for r in runs if r.cost_usd is not None]
    max_c = max(costs) if costs else 0.0
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / len(runs)
    bar_w = max(step * 0.7, 1.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'xmlns="http://www.w3.org/2000/svg" role="img" '
        'aria-label="duration and cost of recent runs">',
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" '
        f'y2="{HEIGHT - PAD}"/>',
        f'<text class="label" x="{PAD}" y="{PAD - 10}">{esc(f"{max_d:.1f}")} s</text>',
    ]
    points: list[str] = []
    for i, r in enumerate(runs):
        d = r.duration_s or 0.0
        h = max(d / max_d * inner_h, 1.0)
        x = PAD + i * step + (step - bar_w) / 2
        y = HEIGHT - PAD - h
        tip = f"{r.run_id}: {r.status}, {d:.1f} s, {money(r.cost_usd)}"
        parts.append(
            f'<rect class="bar st-{esc(r.status)}" x="{x:.1f}" y="{y:.1f}" '
            f'width="{bar_w:.1f}" height="{h:.1f}"><title>{esc(tip)}</title></rect>'
        )
        if r.cost_usd is not None and max_c > 0:
            cy = HEIGHT - PAD - r.cost_usd / max_c * inner_h
            points.append(f"{x + bar_w / 2:.1f},{cy:.1f}")
    if points:
        parts.append(f'<polyline class="cost" points="{" ".join(points)}"/>')
        parts.extend(
            f'<circle class="cost" cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="3"/>'
            for p in points
        )
        parts.append(
            f'<text class="label cost" x="{WIDTH - PAD}" y="{PAD - 10}" '
            f'text-anchor="end">{esc(money(max_c))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
