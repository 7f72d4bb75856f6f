"""The report charts (web/backoffice/charts.py): inline SVG whose bars and points carry
the exact figures, scaled on round ticks, with gaps for missing figures."""

from __future__ import annotations

import re

from saumaton.web.backoffice.charts import (
    Series,
    bar_chart,
    format_value,
    hbar_chart,
    line_chart,
    nice_scale,
)


def test_ticks_are_round_and_cover_the_values() -> None:
    assert nice_scale(0, 930) == [0, 250, 500, 750, 1000]
    assert nice_scale(-120, 380) == [-200, 0, 200, 400]
    ticks = nice_scale(0, 0)
    assert ticks[0] == 0 and ticks[-1] >= 1


def test_figures_are_formatted_per_language() -> None:
    assert format_value(123450, "money", "fi") == "1\u00a0234,50\u00a0€"
    assert format_value(123450, "money", "en") == "€1,234.50"
    assert format_value(12.5, "percent", "fi") == "12,5\u00a0%"
    assert format_value(1234, "count", "en") == "1,234"
    assert format_value(None, "count", "en") == "–"


def test_bar_chart_has_a_bar_per_figure_with_its_exact_value() -> None:
    svg = str(bar_chart("Sales", ["Jan", "Feb"], [
        Series("Webshop", [100000, 250050]), Series("Store", [50000, None])], lang="fi"))
    assert svg.startswith("<svg") and 'role="img"' in svg and 'aria-label="Sales"' in svg
    titles = re.findall(r"<rect[^>]*><title>([^<]*)</title>", svg)
    assert titles == ["Jan · Webshop: 1\u00a0000,00\u00a0€", "Jan · Store: 500,00\u00a0€",
                      "Feb · Webshop: 2\u00a0500,50\u00a0€"]  # no bar for the missing figure
    assert "chart-legend" in svg and "Webshop" in svg  # two series: a legend
    heights = [float(h) for h in re.findall(r'<rect class="bar s0"[^>]*height="([0-9.]+)"', svg)]
    assert heights[1] > heights[0] * 2.4  # 2500 vs 1000, on the same scale


def test_negative_bars_go_below_the_zero_line() -> None:
    svg = str(bar_chart("Net", ["a", "b"], [Series("Net", [-5000, 10000])], lang="en"))
    zero = float(re.search(r'class="grid zero"[^>]*y1="([0-9.]+)"', svg)[1])  # type: ignore[index]
    tops = [float(y) for y in re.findall(r'<rect class="bar s0"[^>]*y="([0-9.]+)"', svg)]
    assert tops[0] == zero  # the negative bar starts at zero and hangs down
    assert tops[1] < zero
    assert "chart-legend" not in svg  # one series: no legend


def test_line_chart_breaks_at_a_gap() -> None:
    svg = str(line_chart("NPS", ["1", "2", "3", "4", "5"],
                         [Series("NPS", [10, 20, None, 30, 40], fmt="percent")], lang="en"))
    assert svg.count("<polyline") == 2
    assert svg.count("<circle") == 4
    assert "3 · NPS" not in svg


def test_ranking_shows_labels_and_values_and_escapes_names() -> None:
    svg = str(hbar_chart("Top", ["Rose <oil>", "Soap"], [3000, 1500], lang="fi"))
    assert "Rose &lt;oil&gt;" in svg and "<oil>" not in svg
    widths = [float(w) for w in re.findall(r'<rect class="bar s0"[^>]*width="([0-9.]+)"', svg)]
    assert abs(widths[0] - 2 * widths[1]) < 0.2
    assert bar_chart("empty", [], []) == ""
