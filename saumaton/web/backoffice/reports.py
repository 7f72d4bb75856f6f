"""Reports → Sales: sales, returns, net, VAT per rate and margin per channel and location
and combined, over time, against the period before and a year earlier; top products and
categories, staff sales per store, returns by reason (docs/reports.md). Every chart has
its table and a CSV of the same figures (`?format=csv&figure=…`).

Figures are read through `reports_db_of` (the read replica when one is set). Managers
see their stores only (reports.sales.scope_of).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_decimal
from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup

from saumaton import i18n
from saumaton.core.actor import Actor
from saumaton.core.errors import NotFound, ValidationFailed
from saumaton.csvio.files import BOM, csv_line, excel_text, format_euros
from saumaton.locations.services import list_locations
from saumaton.reports.addons import AddonRow, addon_sales
from saumaton.reports.period import Grain, Period, parse_period
from saumaton.reports.sales import (
    ChannelRow,
    Figures,
    SalesReport,
    Scope,
    View,
    change_bp,
    sales_report,
    scope_of,
)
from saumaton.reports.sales_detail import returns_by_reason, staff_sales, top_items
from saumaton.web.auth import db_of, reports_db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.backoffice.charts import Series, Table, bar_chart, hbar_chart, line_chart
from saumaton.web.i18n import N_
from saumaton.web.pages import gettext, page_lang, page_router, render, settings_of

router = page_router()

BASE = "/backoffice/reports"
SALES = BASE + "/sales"
MAX_LINES = 5  # series on the over-time chart besides the combined one

Fmt = Literal["text", "money", "count", "bp"]


@dataclass(frozen=True)
class Col:
    key: str  # the CSV header (stable, English; docs/reports.md)
    label: str  # the table header (the page's language)
    fmt: Fmt = "text"


def _cell(value: object, fmt: Fmt, lang: str) -> str:
    if value is None:
        return "–"
    if fmt == "money":
        return i18n.money(int(value), lang)  # type: ignore[call-overload]
    if fmt == "bp":
        return i18n.rate(int(value), lang) + "\u00a0%"  # type: ignore[call-overload]
    if fmt == "count":
        return format_decimal(int(value), locale=i18n.LOCALES[lang])  # type: ignore[call-overload]
    return str(value)


def _csv_cell(value: object, fmt: Fmt) -> str:
    if value is None:
        return ""
    if fmt == "money":
        return format_euros(int(value))  # type: ignore[call-overload]
    if fmt == "bp":  # per cent with a decimal comma: 1250 -> 12,5
        bp = int(value)  # type: ignore[call-overload]
        sign = "-" if bp < 0 else ""
        whole, frac = divmod(abs(bp), 100)
        return f"{sign}{whole},{frac:02d}".rstrip("0").rstrip(",")
    if fmt == "count":
        return str(int(value))  # type: ignore[call-overload]
    return excel_text(str(value))


def table_of(cols: Sequence[Col], rows: Sequence[Sequence[object]], lang: str,
             footer: Sequence[object] | None = None) -> Table:
    return Table(columns=[c.label for c in cols],
                 rows=[[_cell(v, c.fmt, lang) for v, c in zip(r, cols, strict=True)]
                       for r in rows],
                 numeric=frozenset(i for i, c in enumerate(cols) if c.fmt != "text"),
                 footer=None if footer is None else
                 [_cell(v, c.fmt, lang) for v, c in zip(footer, cols, strict=True)])


def csv_of(cols: Sequence[Col], rows: Sequence[Sequence[object]],
           footer: Sequence[object] | None = None) -> str:
    lines = [BOM + csv_line([c.key for c in cols])]
    for r in [*rows, *([footer] if footer is not None else [])]:
        lines.append(csv_line([_csv_cell(v, c.fmt) for v, c in zip(r, cols, strict=True)]))
    return "".join(lines)


def csv_response(name: str, text: str) -> Response:
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}.csv"',
        "Cache-Control": "no-store"})


@dataclass(frozen=True)
class Figure:
    """A chart with the table and CSV of the same figures."""

    key: str
    title: str
    chart: Markup
    cols: Sequence[Col]
    rows: Sequence[Sequence[object]]
    footer: Sequence[object] | None = None

    def table(self, lang: str) -> Table:
        return table_of(self.cols, self.rows, lang, self.footer)


# --- the filters every sales page shares ----------------------------------------------------

@dataclass(frozen=True)
class Filters:
    period: Period
    grain: Grain
    view: View
    location_id: int | None
    values: dict[str, str]  # as typed, for the form

    def query(self, **extra: str) -> str:
        return urlencode({k: v for k, v in {**self.values, **extra}.items() if v})


MESSAGES = {
    "invalid_date": N_("Write the date as YYYY-MM-DD, e.g. 2026-10-31."),
    "invalid_period": N_("The period ends before it starts."),
    "period_too_long": N_("A report spans at most three years."),
    "invalid_grain": N_("Choose day, week or month."),
    "invalid_view": N_("Choose where sold or where fulfilled."),
    "unknown_location": N_("Choose one of the locations listed."),
}


async def _locations(request: Request, scope: Scope) -> list[tuple[int, str]]:
    async with reports_db_of(request).reader() as s:
        return [(loc.id, loc.name) for loc in await list_locations(s)
                if scope.allows(loc.id)]


def _filters(request: Request, today: date, locations: list[tuple[int, str]]
             ) -> tuple[Filters | None, dict[str, str], dict[str, str]]:
    q = request.query_params
    values = {k: (q.get(k) or "").strip()[:40] for k in ("since", "until", "grain", "view",
                                                          "location")}
    errors: dict[str, str] = {}
    period = None
    try:
        period = parse_period(values["since"] or None, values["until"] or None, today)
    except ValidationFailed as exc:
        errors[exc.field or "since"] = gettext(request, MESSAGES.get(exc.code, exc.code))
    grain = Grain.DAY
    if values["grain"]:
        try:
            grain = Grain(values["grain"])
        except ValueError:
            errors["grain"] = gettext(request, MESSAGES["invalid_grain"])
    view = View.SOLD
    if values["view"]:
        try:
            view = View(values["view"])
        except ValueError:
            errors["view"] = gettext(request, MESSAGES["invalid_view"])
    location_id = None
    if values["location"]:
        ids = {i for i, _ in locations}
        if not values["location"].isdigit() or int(values["location"]) not in ids:
            errors["location"] = gettext(request, MESSAGES["unknown_location"])
        else:
            location_id = int(values["location"])
    if errors or period is None:
        return None, values, errors
    if not values["grain"] and period.days > 62:
        grain = Grain.MONTH if period.days > 400 else Grain.WEEK
    values["grain"] = grain.value
    return Filters(period, grain, view, location_id, values), values, errors


def _today(request: Request) -> date:
    return datetime.now(ZoneInfo(settings_of(request).timezone)).date()


def _label(request: Request, row: ChannelRow, view: View) -> str:
    if view is View.SOLD:
        if row.location and row.channel_kind != "pos":
            return f"{row.channel} · {row.location}"
        return row.channel
    where = row.location or gettext(request, N_("No location (by post)"))
    return f"{where} · {row.channel}"


def _bucket_label(day: date, grain: Grain, lang: str) -> str:
    locale = i18n.LOCALES[lang]
    if grain is Grain.MONTH:
        return format_date(day, "LLL yyyy", locale=locale)
    if grain is Grain.WEEK:
        return gettext_week(day, lang)
    return format_date(day, "d.M." if lang == "fi" else "d MMM", locale=locale)


def gettext_week(day: date, lang: str) -> str:
    year, week, _ = day.isocalendar()
    return f"{'vk' if lang == 'fi' else 'wk'} {week}/{year}"


# --- the overview -----------------------------------------------------------------------------

def _channel_figure(request: Request, report: SalesReport, lang: str) -> Figure:
    t = gettext
    cols = [Col("channel", t(request, N_("Channel and location"))),
            Col("sales_eur", t(request, N_("Sales")), "money"),
            Col("returns_eur", t(request, N_("Returns")), "money"),
            Col("net_sales_eur", t(request, N_("Net sales")), "money"),
            Col("net_vat_eur", t(request, N_("VAT")), "money"),
            Col("net_excl_vat_eur", t(request, N_("Net sales excl. VAT")), "money"),
            Col("margin_eur", t(request, N_("Gross margin")), "money"),
            Col("margin_pct", t(request, N_("Margin %")), "bp"),
            Col("unknown_cost_pct", t(request, N_("Without cost price %")), "bp"),
            Col("units", t(request, N_("Units")), "count"),
            Col("orders", t(request, N_("Orders")), "count"),
            Col("average_basket_eur", t(request, N_("Average basket")), "money"),
            Col("gift_cards_sold_eur", t(request, N_("Gift cards sold")), "money"),
            Col("net_previous_eur", t(request, N_("Net sales, period before")), "money"),
            Col("change_previous_pct", t(request, N_("Change %")), "bp"),
            Col("net_year_earlier_eur", t(request, N_("Net sales, a year earlier")), "money"),
            Col("change_year_pct", t(request, N_("Change on a year earlier %")), "bp")]

    def row(label: str, f: Figures, prev: Figures | None, year: Figures | None) -> list[object]:
        p = prev.net_cents if prev else 0
        y = year.net_cents if year else 0
        return [label, f.sales_cents, f.returns_cents, f.net_cents, f.net_vat_cents,
                f.net_excl_vat_cents, f.margin_cents, f.margin_bp, f.unknown_cost_bp, f.units,
                f.orders, f.average_basket_cents, f.gift_cards_cents, p,
                change_bp(f.net_cents, p), y, change_bp(f.net_cents, y)]

    rows = [row(_label(request, r, report.view), r.figures,
                report.previous_by_key.get(r.key), report.year_earlier_by_key.get(r.key))
            for r in report.rows]
    footer = row(t(request, N_("All channels")), report.total, report.previous,
                 report.year_earlier)
    labels = [str(r[0]) for r in rows]
    chart = bar_chart(t(request, N_("Net sales per channel")), labels, [
        Series(t(request, N_("This period")), [float(r[3]) for r in rows]),  # type: ignore[arg-type]
        Series(t(request, N_("Period before")), [float(r[13]) for r in rows]),  # type: ignore[arg-type]
        Series(t(request, N_("A year earlier")), [float(r[15]) for r in rows]),  # type: ignore[arg-type]
    ], lang=lang) if rows else Markup("")
    return Figure("channels", t(request, N_("Sales per channel")), chart, cols, rows, footer)


def _addon_figure(request: Request, addons: Sequence[AddonRow], lang: str) -> Figure:
    """Add-ons (suggestions taken, `source` 'upsell') per channel."""
    t = gettext
    cols = [Col("channel", t(request, N_("Channel"))),
            Col("addon_orders", t(request, N_("Orders with add-ons")), "count"),
            Col("addon_units", t(request, N_("Add-on units")), "count"),
            Col("addon_sales_eur", t(request, N_("Add-on sales")), "money"),
            Col("addon_share_pct", t(request, N_("Share of goods sales %")), "bp")]
    rows = [[a.channel, a.orders, a.units, a.sales_cents, a.share_bp] for a in addons]
    sales = sum(a.sales_cents for a in addons)
    goods = sum(a.goods_cents for a in addons)
    footer: list[object] = [t(request, N_("All channels")), sum(a.orders for a in addons),
                            sum(a.units for a in addons), sales,
                            sales * 10_000 // goods if goods else None]
    chart = bar_chart(t(request, N_("Add-on sales per channel")), [a.channel for a in addons],
                      [Series(t(request, N_("Add-on sales")),
                              [float(a.sales_cents) for a in addons])],
                      lang=lang) if any(a.sales_cents for a in addons) else Markup("")
    return Figure("addons", t(request, N_("Add-ons per channel")), chart, cols, rows, footer)


def _series_figure(request: Request, report: SalesReport, lang: str) -> Figure:
    t = gettext
    shown = sorted(report.rows, key=lambda r: -abs(r.figures.net_cents))[:MAX_LINES]
    cols = [Col("period_start", t(request, N_("Period"))),
            *[Col(f"net_eur_{i + 1}", _label(request, r, report.view), "money")
              for i, r in enumerate(shown)],
            Col("net_eur_all", t(request, N_("All channels")), "money")]
    rows = [[b.isoformat(), *[v.get(r.key, 0) for r in shown], sum(v.values())]
            for b, v in report.buckets]
    labels = [_bucket_label(b, report.grain, lang) for b, _ in report.buckets]
    chart = line_chart(t(request, N_("Net sales over time")), labels, [
        Series(t(request, N_("All channels")), [float(r[-1]) for r in rows]),  # type: ignore[arg-type]
        *[Series(_label(request, ch, report.view), [float(r[i + 1]) for r in rows])  # type: ignore[arg-type]
          for i, ch in enumerate(shown)]], lang=lang) if rows else Markup("")
    return Figure("series", t(request, N_("Net sales over time")), chart, cols, rows)


def _vat_figure(request: Request, report: SalesReport, lang: str) -> Figure:
    t = gettext
    cols = [Col("vat_rate_pct", t(request, N_("VAT rate")), "bp"),
            Col("sales_excl_vat_eur", t(request, N_("Sales excl. VAT")), "money"),
            Col("sales_vat_eur", t(request, N_("Sales VAT")), "money"),
            Col("sales_eur", t(request, N_("Sales incl. VAT")), "money"),
            Col("returns_excl_vat_eur", t(request, N_("Returns excl. VAT")), "money"),
            Col("returns_vat_eur", t(request, N_("Returns VAT")), "money"),
            Col("returns_eur", t(request, N_("Returns incl. VAT")), "money"),
            Col("net_excl_vat_eur", t(request, N_("Net excl. VAT")), "money"),
            Col("net_vat_eur", t(request, N_("Net VAT")), "money"),
            Col("net_eur", t(request, N_("Net incl. VAT")), "money")]
    rows = [[v.rate_bp, v.sales_cents - v.sales_vat_cents, v.sales_vat_cents, v.sales_cents,
             v.returns_cents - v.returns_vat_cents, v.returns_vat_cents, v.returns_cents,
             v.net_excl_vat_cents, v.net_vat_cents, v.net_cents] for v in report.vat]
    footer: list[object] = [None, *(sum(int(r[i]) for r in rows)
                                   for i in range(1, len(cols)))]
    chart = bar_chart(t(request, N_("Net sales per VAT rate")),
                      [_cell(r[0], "bp", lang) for r in rows],
                      [Series(t(request, N_("Net excl. VAT")), [float(r[7]) for r in rows]),
                       Series(t(request, N_("Net VAT")), [float(r[8]) for r in rows])],
                      lang=lang) if rows else Markup("")
    return Figure("vat", t(request, N_("VAT per rate")), chart, cols, rows, footer)


async def _context(request: Request, actor: Actor
                   ) -> tuple[Scope, list[tuple[int, str]], Filters | None, dict[str, Any]]:
    scope = scope_of(actor)
    locations = await _locations(request, scope)
    filters, values, errors = _filters(request, _today(request), locations)
    ctx: dict[str, Any] = {"values": values, "errors": errors, "locations": locations,
                           "query": "",
                           "nav_key": "reports", "grains": [
                               ("day", gettext(request, N_("Day"))),
                               ("week", gettext(request, N_("Week"))),
                               ("month", gettext(request, N_("Month")))],
                           "views": [
                               ("sold", gettext(request, N_("Where sold"))),
                               ("fulfilled", gettext(request,
                                                     N_("Where fulfilled or returned")))]}
    if filters is not None:
        scope = scope.narrowed(filters.location_id)
        ctx["query"] = filters.query()
        ctx["period"] = filters.period
    return scope, locations, filters, ctx


def _figure_ctx(figures: list[Figure], lang: str, base: str, query: str
                ) -> list[dict[str, Any]]:
    return [{"title": f.title, "chart": f.chart, "table": f.table(lang),
             "table_open": len(f.rows) <= 12,
             "csv_href": f"{base}?{query}&format=csv&figure={f.key}" if query
             else f"{base}?format=csv&figure={f.key}", "figure_id": f"figure-{f.key}"}
            for f in figures]


def _pick(request: Request, figures: list[Figure], name: str) -> Response:
    wanted = request.query_params.get("figure", figures[0].key)
    for f in figures:
        if f.key == wanted:
            return csv_response(f"{name}-{f.key}", csv_of(f.cols, f.rows, f.footer))
    raise NotFound(f"no figure {wanted!r} on this page", code="unknown_figure",
                   field="figure")


@router.get(BASE)
async def reports(request: Request,
                  actor: Annotated[Actor, requires("reports.read")]) -> Response:
    scope, _, filters, ctx = await _context(request, actor)
    lang = page_lang(request)
    title = gettext(request, N_("Sales"))
    async with db_of(request).reader() as s:  # the Z-report links: this database's tills
        ctx["stores"] = [loc for loc in await list_locations(s)
                         if loc.kind == "store" and loc.sells_in_person
                         and actor.can("orders.read", loc.id)]
    if filters is None:
        return render(request, "backoffice/reports.html", {**ctx, "title": title},
                      status=400)
    async with reports_db_of(request).reader() as s:
        report = await sales_report(s, filters.period, tz=settings_of(request).timezone,
                                    grain=filters.grain, view=filters.view, scope=scope)
        addons = await addon_sales(s, filters.period, tz=settings_of(request).timezone,
                                   scope=scope)
    figures = [_channel_figure(request, report, lang), _addon_figure(request, addons, lang),
               _series_figure(request, report, lang), _vat_figure(request, report, lang)]
    if request.query_params.get("format") == "csv":
        return _pick(request, figures, f"sales-{filters.period.first}-{filters.period.last}")
    t = report.total
    cards = [
        ("net", gettext(request, N_("Net sales")), i18n.money(t.net_cents, lang), _change(
            request, t.net_cents, report.previous, report.year_earlier, lang)),
        ("margin", gettext(request, N_("Gross margin")), i18n.money(t.margin_cents, lang),
         gettext(request, N_("Margin %(pct)s; %(unknown)s of sales without a cost price"),
                 pct=_cell(t.margin_bp, "bp", lang), unknown=_cell(t.unknown_cost_bp, "bp",
                                                                   lang))),
        ("orders", gettext(request, N_("Orders")), str(t.orders),
         gettext(request, N_("Average basket %(avg)s"),
                 avg=_cell(t.average_basket_cents, "money", lang))),
        ("returns", gettext(request, N_("Returns")), i18n.money(t.returns_cents, lang),
         gettext(request, N_("%(units)s units"), units=t.units_returned)),
        ("gift-cards", gettext(request, N_("Gift cards sold")),
         i18n.money(t.gift_cards_cents, lang),
         gettext(request, N_("A liability, not a sale: spent cards are sales"))),
    ]
    return render(request, "backoffice/reports.html", {
        **ctx, "title": title, "cards": cards, "report": report,
        "figures": _figure_ctx(figures, lang, BASE, filters.query()),
        "live_days": report.live_days})


def _change(request: Request, now: int, prev: Figures | None, year: Figures | None,
            lang: str) -> str:
    parts = []
    for label, f in ((N_("period before %(pct)s"), prev), (N_("a year earlier %(pct)s"), year)):
        if f is not None:
            bp = change_bp(now, f.net_cents)
            pct = "–" if bp is None else ("+" if bp > 0 else "") + _cell(bp, "bp", lang)
            parts.append(gettext(request, label, pct=pct))
    return ", ".join(parts)


# --- the detail pages -------------------------------------------------------------------------

async def _detail(request: Request, actor: Actor, template: str, title: str, name: str,
                  build: Callable[[Any, Filters, Scope, str], Any]) -> Response:
    scope, _, filters, ctx = await _context(request, actor)
    lang = page_lang(request)
    if filters is None:
        return render(request, template, {**ctx, "title": title}, status=400)
    async with reports_db_of(request).reader() as s:
        figures: list[Figure] = await build(s, filters, scope, lang)
    if request.query_params.get("format") == "csv":
        return _pick(request, figures, f"{name}-{filters.period.first}-{filters.period.last}")
    return render(request, template, {
        **ctx, "title": title,
        "figures": _figure_ctx(figures, lang, request.url.path, filters.query())})


@router.get(SALES + "/products")
async def products(request: Request,
                   actor: Annotated[Actor, requires("reports.read")]) -> Response:
    tz = settings_of(request).timezone

    async def build(s: Any, f: Filters, scope: Scope, lang: str) -> list[Figure]:
        out = []
        for by, key, title, head in (
                ("product", "products", N_("Top products by net sales"), N_("Product")),
                ("category", "categories", N_("Top categories by net sales"),
                 N_("Category"))):
            items = await top_items(s, f.period, tz=tz, by=by, view=f.view, scope=scope)
            cols = [Col("sku" if by == "product" else "category_id", "SKU" if by == "product"
                        else "#"),
                    Col("name", gettext(request, head)),
                    Col("units_sold", gettext(request, N_("Units sold")), "count"),
                    Col("sales_eur", gettext(request, N_("Sales")), "money"),
                    Col("returns_eur", gettext(request, N_("Returns")), "money"),
                    Col("net_sales_eur", gettext(request, N_("Net sales")), "money"),
                    Col("margin_eur", gettext(request, N_("Gross margin")), "money")]
            none = gettext(request, N_("No category"))
            rows = [[i.code if by == "product" else (i.key or ""), i.name or none,
                     i.units_sold, i.sales_cents, i.returns_cents, i.net_cents,
                     i.margin_cents] for i in items]
            chart = hbar_chart(gettext(request, title), [str(r[1]) for r in rows],
                               [float(r[5]) for r in rows], lang=lang)
            out.append(Figure(key, gettext(request, title), chart, cols, rows))
        return out

    return await _detail(request, actor, "backoffice/reports_detail.html",
                         gettext(request, N_("Products and categories")), "products", build)


@router.get(SALES + "/staff")
async def staff(request: Request,
                actor: Annotated[Actor, requires("reports.read")]) -> Response:
    tz = settings_of(request).timezone

    async def build(s: Any, f: Filters, scope: Scope, lang: str) -> list[Figure]:
        rows_in = await staff_sales(s, f.period, tz=tz, scope=scope)
        cols = [Col("location", gettext(request, N_("Store"))),
                Col("staff", gettext(request, N_("Staff member"))),
                Col("orders", gettext(request, N_("Orders")), "count"),
                Col("units", gettext(request, N_("Units")), "count"),
                Col("sales_eur", gettext(request, N_("Sales")), "money"),
                Col("average_basket_eur", gettext(request, N_("Average basket")), "money")]
        rows = [[r.location, _person(r.staff), r.orders, r.units, r.sales_cents,
                 r.average_basket_cents] for r in rows_in]
        title = gettext(request, N_("Sales per staff member in the stores"))
        chart = hbar_chart(title, [f"{r[1]} · {r[0]}" for r in rows],
                           [float(r[4]) for r in rows], lang=lang)  # type: ignore[arg-type]
        return [Figure("staff", title, chart, cols, rows)]

    return await _detail(request, actor, "backoffice/reports_detail.html",
                         gettext(request, N_("Staff sales")), "staff", build)


def _person(label: str) -> str:
    """'staff:3 anna@shop.fi' -> 'anna@shop.fi' (the order's created_by)."""
    return label.split(" ", 1)[1] if label.startswith("staff:") and " " in label else label


@router.get(SALES + "/returns")
async def returns(request: Request,
                  actor: Annotated[Actor, requires("reports.read")]) -> Response:
    tz = settings_of(request).timezone

    async def build(s: Any, f: Filters, scope: Scope, lang: str) -> list[Figure]:
        reasons = await returns_by_reason(s, f.period, tz=tz, view=f.view, scope=scope)
        cols = [Col("reason", gettext(request, N_("Reason"))),
                Col("channel", gettext(request, N_("Sold in"))),
                Col("returned_at", gettext(request, N_("Returned at"))),
                Col("lines", gettext(request, N_("Lines")), "count"),
                Col("units", gettext(request, N_("Units")), "count"),
                Col("refund_eur", gettext(request, N_("Refunded")), "money"),
                Col("vat_eur", gettext(request, N_("VAT")), "money")]
        post = gettext(request, N_("By post"))
        none = gettext(request, N_("No reason given"))
        rows = [[r.reason or none, r.channel, r.returned_at or post, r.lines, r.units,
                 r.refund_cents, r.vat_cents] for r in reasons]
        by_reason: dict[str, int] = {}
        for r in rows:
            by_reason[str(r[0])] = by_reason.get(str(r[0]), 0) + int(r[5])  # type: ignore[call-overload]
        title = gettext(request, N_("Returns by reason"))
        chart = hbar_chart(title, list(by_reason), [float(v) for v in by_reason.values()],
                           lang=lang)
        report = await sales_report(s, f.period, tz=tz, view=f.view, scope=scope,
                                    compare=False)
        ch_cols = [Col("channel", gettext(request, N_("Channel and location"))),
                   Col("returns_eur", gettext(request, N_("Returns")), "money"),
                   Col("units_returned", gettext(request, N_("Units")), "count"),
                   Col("sales_eur", gettext(request, N_("Sales")), "money"),
                   Col("returns_share_pct", gettext(request, N_("Share of sales %")), "bp")]
        ch_rows = [[_label(request, r, f.view), r.figures.returns_cents,
                    r.figures.units_returned, r.figures.sales_cents,
                    _share(r.figures.returns_cents, r.figures.sales_cents)]
                   for r in report.rows if r.figures.returns_cents]
        ch_title = gettext(request, N_("Returns per channel"))
        ch_chart = hbar_chart(ch_title, [str(r[0]) for r in ch_rows],
                              [float(r[1]) for r in ch_rows], lang=lang)  # type: ignore[arg-type]
        return [Figure("reasons", title, chart, cols, rows),
                Figure("channels", ch_title, ch_chart, ch_cols, ch_rows)]

    return await _detail(request, actor, "backoffice/reports_detail.html",
                         gettext(request, N_("Returns by reason")), "returns", build)


def _share(part: int, whole: int) -> int | None:
    return round(part * 10_000 / whole) if whole else None
