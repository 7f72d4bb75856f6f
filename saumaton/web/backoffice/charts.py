"""Charts for the report pages, drawn on the server as inline SVG.

Why SVG from the server and not a JavaScript chart library: the reports are tables of a
few dozen figures; an SVG of them is a few kilobytes, needs no script, no CDN and no
vendored bundle to keep up to date, prints, scales with the page (a `viewBox` and
`width: 100%`) down to a 375 px phone, and is readable by tests as plain markup. Each
bar and point carries a `<title>` (the exact figure, shown on hover and read by screen
readers); the legend is HTML under the chart so it wraps on a narrow screen. Colours
come from the stylesheet (`.chart .s0` … `.s5`), never from here.

Every chart on a page sits in `backoffice/_figure.html` with the `Table` of the same
figures and a CSV link, so nothing is only a picture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from babel.numbers import format_decimal, format_percent
from markupsafe import Markup, escape

from saumaton import i18n

Fmt = Literal["money", "count", "percent"]
PALETTE_SIZE = 6  # .s0 … .s5 in backoffice.css
WIDTH = 640
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 70, 12, 12, 36
ROW = 44  # one row of a horizontal ranking


@dataclass(frozen=True)
class Series:
    """One named row of figures: money in cents, counts, or percentages (12.5 = 12.5 %).
    A value may be None (no figure for that label: a gap, not a zero)."""

    name: str
    values: Sequence[float | None]
    fmt: Fmt = "money"


@dataclass(frozen=True)
class Table:
    """The figures behind a chart as text cells; `numeric` columns align right."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric: frozenset[int] = field(default_factory=frozenset)
    caption: str = ""
    # A last row set apart (totals).
    footer: Sequence[str] | None = None


def format_value(value: float | None, fmt: Fmt, lang: str) -> str:
    """A figure as the tables print it: 1 234,50 €, 1 234, 12,5 %."""
    if value is None:
        return "–"
    locale = i18n.LOCALES[lang]
    if fmt == "money":
        return i18n.money(int(value), lang)
    if fmt == "percent":
        return format_percent(Decimal(str(value)) / 100, "#,##0.0\u00a0%", locale=locale)
    return format_decimal(Decimal(str(value)), "#,##0.##", locale=locale)


def _axis_value(value: float, fmt: Fmt, lang: str) -> str:
    """A short tick label: 12 k€, 1,5 M€, 340, 25 %."""
    locale = i18n.LOCALES[lang]

    def short(x: float) -> str:
        return format_decimal(Decimal(str(round(x, 1))), "#,##0.#", locale=locale)

    if fmt == "percent":
        return short(value) + " %"
    amount = value / 100 if fmt == "money" else value
    unit = "€" if fmt == "money" else ""
    for limit, prefix in ((1_000_000, "M"), (1_000, "k")):
        if abs(amount) >= limit:
            return f"{short(amount / limit)} {prefix}{unit}"
    return f"{short(amount)} {unit}".rstrip()


def nice_scale(low: float, high: float, ticks: int = 4) -> list[float]:
    """Round tick values covering [low, high] (always including 0): steps of 1, 2, 2.5 or 5
    times a power of ten."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high == low:
        high = low + 1
    raw = (high - low) / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    values = []
    v = first
    while v < high + step * 0.999:
        values.append(round(v, 10))
        v += step
    if values[-1] < high:
        values.append(values[-1] + step)
    return values


def _label_every(count: int, width: float) -> int:
    """Show every n-th x label so they do not overlap (about 72 units each: room for
    the larger text on a phone)."""
    return max(1, math.ceil(count * 72 / width))


def _svg_open(title: str, height: int, kind: str) -> list[str]:
    t = escape(title)
    return [f'<svg class="chart chart-{kind}" viewBox="0 0 {WIDTH} {height}" role="img" '
            f'aria-label="{t}" preserveAspectRatio="xMidYMid meet" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{t}</title>']


def _legend(series: Sequence[Series]) -> str:
    if len(series) < 2:
        return ""
    items = "".join(f'<li><span class="swatch s{i % PALETTE_SIZE}"></span>{escape(s.name)}</li>'
                    for i, s in enumerate(series))
    return f'<ul class="chart-legend">{items}</ul>'


def _y_axis(out: list[str], ticks: list[float], y_of: object, fmt: Fmt, lang: str) -> None:
    assert callable(y_of)
    for t in ticks:
        y = y_of(t)
        out.append(f'<line class="grid{" zero" if t == 0 else ""}" x1="{LEFT}" '
                   f'x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(_axis_value(t, fmt, lang))}</text>')


def _scale(series: Sequence[Series]) -> tuple[list[float], float, float]:
    values = [v for s in series for v in s.values if v is not None]
    ticks = nice_scale(min(values, default=0.0), max(values, default=0.0))
    return ticks, ticks[0], ticks[-1]


def bar_chart(title: str, labels: Sequence[str], series: Sequence[Series], *,
              lang: str = "fi") -> Markup:
    """Vertical bars, one group per label, one bar per series."""
    if not labels or not series:
        return Markup("")
    fmt = series[0].fmt
    ticks, lo, hi = _scale(series)
    plot_h = HEIGHT - TOP - BOTTOM
    plot_w = WIDTH - LEFT - RIGHT

    def y_of(v: float) -> float:
        return TOP + plot_h * (hi - v) / (hi - lo)

    out = _svg_open(title, HEIGHT, "bar")
    _y_axis(out, ticks, y_of, fmt, lang)
    group_w = plot_w / len(labels)
    bar_w = max(1.0, group_w * 0.8 / len(series))
    every = _label_every(len(labels), plot_w)
    for i, label in enumerate(labels):
        x0 = LEFT + i * group_w + group_w * 0.1
        for j, s in enumerate(series):
            v = s.values[i] if i < len(s.values) else None
            if v is None:
                continue
            top, bottom = sorted((y_of(v), y_of(0)))
            tip = f"{label} · {s.name}: {format_value(v, s.fmt, lang)}"
            out.append(f'<rect class="bar s{j % PALETTE_SIZE}" x="{x0 + j * bar_w:.1f}" '
                       f'y="{top:.1f}" width="{bar_w:.1f}" height="{max(bottom - top, 0.5):.1f}">'
                       f'<title>{escape(tip)}</title></rect>')
        if i % every == 0:
            out.append(f'<text class="tick" x="{LEFT + (i + 0.5) * group_w:.1f}" '
                       f'y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{escape(label)}</text>')
    out.append("</svg>")
    return Markup("".join(out) + _legend(series))


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series], *,
               lang: str = "fi") -> Markup:
    """One line per series over the labels (days, weeks, months)."""
    if not labels or not series:
        return Markup("")
    fmt = series[0].fmt
    ticks, lo, hi = _scale(series)
    plot_h = HEIGHT - TOP - BOTTOM
    plot_w = WIDTH - LEFT - RIGHT
    step = plot_w / max(len(labels) - 1, 1)

    def y_of(v: float) -> float:
        return TOP + plot_h * (hi - v) / (hi - lo)

    def x_of(i: int) -> float:
        return LEFT + (i * step if len(labels) > 1 else plot_w / 2)

    out = _svg_open(title, HEIGHT, "line")
    _y_axis(out, ticks, y_of, fmt, lang)
    for j, s in enumerate(series):
        css = f"s{j % PALETTE_SIZE}"
        # A gap (None) breaks the line into runs.
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values[:len(labels)]):
            if v is None:
                runs.append([])
                continue
            runs[-1].append(f"{x_of(i):.1f},{y_of(v):.1f}")
        for run in runs:
            if len(run) > 1:
                out.append(f'<polyline class="line {css}" points="{" ".join(run)}"/>')
        for i, v in enumerate(s.values[:len(labels)]):
            if v is None:
                continue
            tip = f"{labels[i]} · {s.name}: {format_value(v, s.fmt, lang)}"
            out.append(f'<circle class="point {css}" cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" '
                       f'r="3"><title>{escape(tip)}</title></circle>')
    every = _label_every(len(labels), plot_w)
    for i, label in enumerate(labels):
        if i % every == 0:
            out.append(f'<text class="tick" x="{x_of(i):.1f}" y="{HEIGHT - BOTTOM + 16}" '
                       f'text-anchor="middle">{escape(label)}</text>')
    out.append("</svg>")
    return Markup("".join(out) + _legend(series))


def hbar_chart(title: str, labels: Sequence[str], values: Sequence[float], *,
               fmt: Fmt = "money", lang: str = "fi") -> Markup:
    """A ranking: one horizontal bar per label (top products, reasons), the label above
    its bar so long names fit a phone."""
    if not labels:
        return Markup("")
    height = TOP + ROW * len(labels) + 4
    top_value = max((abs(v) for v in values), default=0) or 1
    plot_w = WIDTH - RIGHT - 4
    out = _svg_open(title, height, "hbar")
    for i, (label, v) in enumerate(zip(labels, values, strict=False)):
        y = TOP + i * ROW
        w = max(plot_w * abs(v) / top_value, 1.0)
        shown = format_value(v, fmt, lang)
        out.append(f'<text class="label" x="0" y="{y + 17}">{escape(label)}</text>')
        out.append(f'<rect class="bar s0" x="0" y="{y + 23}" width="{w:.1f}" height="13">'
                   f'<title>{escape(f"{label}: {shown}")}</title></rect>')
        out.append(f'<text class="value" x="{WIDTH - RIGHT}" y="{y + 17}" '
                   f'text-anchor="end">{escape(shown)}</text>')
    out.append("</svg>")
    return Markup("".join(out))
