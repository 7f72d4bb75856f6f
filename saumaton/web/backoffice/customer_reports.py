"""Customer reports in the back office: channel journeys, NPS, the funnel, loyalty.

Chain-wide figures: every page needs reports.read at every location (owner, finance);
a store manager gets the 403 page. Each figure is one `Figure`: the same rows make
the table, the chart and the CSV (`?format=csv&table=<key>`), so they cannot disagree.
Definitions: docs/customer-reports.md. Thin: the figures come from saumaton.reports.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from saumaton.analytics import KINDS
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import ValidationFailed
from saumaton.csvio.files import BOM, csv_line, excel_text, format_euros
from saumaton.reports.funnel_report import FunnelReport, funnel_report
from saumaton.reports.journeys import KIND_ORDER, WEB_TO_STORE, JourneyReport, journey_report
from saumaton.reports.loyalty_report import NEW, LoyaltyReport, loyalty_report
from saumaton.reports.nps_report import NpsReport, nps_report
from saumaton.reports.period import Grain, Period, parse_period
from saumaton.web import i18n as web_i18n
from saumaton.web.auth import reports_db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.backoffice.charts import Series, Table, bar_chart, hbar_chart, line_chart
from saumaton.web.i18n import N_
from saumaton.web.pages import error_message, gettext, page_lang, page_router, render, settings_of

router = page_router("/backoffice/reports")
NAV_KEY = "customer-reports"
Chain = Annotated[Actor, requires("reports.read", everywhere=True)]
Text = Annotated[str, Query(max_length=20)]

TABS = (
    ("customers", "/backoffice/reports/customers", N_("Channel journeys")),
    ("nps", "/backoffice/reports/nps", N_("NPS")),
    ("funnel", "/backoffice/reports/funnel", N_("Conversion funnel")),
    ("loyalty", "/backoffice/reports/loyalty", N_("Loyalty")),
)
KIND_LABELS = {"pos": N_("Store"), "webshop": N_("Webshop"),
               WEB_TO_STORE: N_("Reserved online, bought in a store"),
               "service_desk": N_("Service desk"), "api": N_("API"), "other": N_("Other")}
STEP_LABELS = {"visit": N_("Visits"), "product_view": N_("Product views"),
               "add_to_cart": N_("Added to cart"), "checkout_started": N_("Checkout started"),
               "payment_started": N_("Payment started"), "order_placed": N_("Orders placed")}
DEVICE_LABELS = {"mobile": N_("Mobile"), "tablet": N_("Tablet"), "desktop": N_("Desktop"),
                 "unknown": N_("Unknown device")}
TIER_LABELS = {"member": N_("Member"), "silver": N_("Silver"), "gold": N_("Gold"),
               NEW: N_("Joined in the period")}
LEDGER_LABELS = {"earn": N_("Earned (issued)"), "redeem": N_("Used as payment"),
                 "refund": N_("Given back (cancelled or returned orders paid with points)"),
                 "reverse": N_("Taken back (returns)"),
                 "expire": N_("Expired (unused by their date)"),
                 "adjust": N_("Adjusted by staff")}
WEB_TO_STORE_NOTE = N_(
    "Reserved online, bought in a store: a reservation to try made on the web and bought "
    "at the store's till, a journey that began on the web and ended in the store.")
MESSAGES = {
    "invalid_date": N_("Write the date as YYYY-MM-DD."),
    "invalid_period": N_("The period ends before it starts."),
    "period_too_long": N_("A report spans at most three years."),
    "invalid_grain": N_("Choose day, week or month."),
    "invalid_table": N_("No such table on this page."),
}


# --- figures: one definition for the table, the chart and the CSV -------------------


@dataclass(frozen=True)
class Col:
    label: str  # translated
    csv: str  # the CSV header (English, stable: docs/customer-reports.md)
    kind: str = "count"  # text | count | money | percent | days | score | link


@dataclass
class Figure:
    key: str
    title: str
    cols: list[Col]
    rows: list[list[Any]]
    chart: Markup | None = None
    note: str = ""

    def table(self, lang: str) -> Table:
        """The figures as the page shows them (charts.Table for backoffice/_figure.html)."""
        return Table(columns=[c.label for c in self.cols],
                     rows=[[cell(row[i], c.kind, lang) for i, c in enumerate(self.cols)]
                           for row in self.rows],
                     numeric=frozenset(i for i, c in enumerate(self.cols)
                                       if c.kind not in ("text", "link")))

    def csv_href(self, base: str, query: str) -> str:
        extra = f"&{query}" if query else ""
        return f"{base}?format=csv&table={self.key}{extra}"


def _percent(value: float | None, lang: str) -> str:
    if value is None:
        return "–"
    text = f"{value * 100:.1f}"
    return text.replace(".", ",") + " %" if lang == "fi" else text + "%"


def _decimal(value: float | None, lang: str, digits: int = 1) -> str:
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if lang == "fi" else text


def pct(value: float | None) -> float | None:
    """A share (0.125) as the charts' percent (12.5)."""
    return None if value is None else round(value * 100, 1)


def cell(value: Any, kind: str, lang: str) -> str | Markup:
    if value is None:
        return "–"
    if kind == "money":
        return web_i18n.money(int(value), lang)
    if kind == "percent":
        return _percent(float(value), lang)
    if kind in ("days", "score"):
        return _decimal(float(value), lang)
    if kind == "link":
        text, href = value
        return Markup('<a href="{}">{}</a>').format(href, text) if href else str(text)
    return str(value)


def csv_cell(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "money":
        return format_euros(int(value))
    if kind == "percent":
        return f"{float(value) * 100:.1f}".replace(".", ",")
    if kind in ("days", "score"):
        return f"{float(value):.1f}".replace(".", ",")
    if kind == "link":
        return excel_text(str(value[0]))
    return excel_text(str(value))


def csv_response(fig: Figure, filename: str) -> Response:
    out = io.StringIO()
    out.write(BOM)
    out.write(csv_line([c.csv for c in fig.cols]))
    for row in fig.rows:
        out.write(csv_line([csv_cell(v, c.kind) for v, c in zip(row, fig.cols, strict=True)]))
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}-{fig.key}.csv"',
        "Cache-Control": "no-store"})


@dataclass
class PageState:
    tab: str
    base: str
    query: str = ""  # the period's query string, kept in the CSV links
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    period: Period | None = None


def _period(request: Request, state: PageState, since: str, until: str,
            default: Callable[[date], Period] | None = None) -> Period | None:
    tz = settings_of(request).timezone
    today = utcnow().astimezone(ZoneInfo(tz)).date()
    state.values.update(since=since, until=until)
    try:
        if not since and not until and default is not None:
            period = default(today)
        else:
            period = parse_period(since or None, until or None, today)
    except ValidationFailed as exc:
        state.errors[exc.field or "since"] = error_message(request, exc, MESSAGES)
        return None
    state.values.update(since=period.first.isoformat(), until=period.last.isoformat())
    state.query = f"since={period.first.isoformat()}&until={period.last.isoformat()}"
    state.period = period
    return period


def _page(request: Request, state: PageState, title: str, figures: Sequence[Figure],
          fmt: str, table: str, extra: dict[str, Any] | None = None) -> Response:
    if fmt == "csv":
        if state.errors:
            return render(request, "backoffice/customer_reports.html", _context(
                request, state, title, [], extra), status=422)
        for fig in figures:
            if fig.key == table:
                return csv_response(fig, state.tab)
        raise ValidationFailed("no such table", code="invalid_table", field="table")
    return render(request, "backoffice/customer_reports.html",
                  _context(request, state, title, figures, extra),
                  status=422 if state.errors else 200)


def _context(request: Request, state: PageState, title: str, figures: Sequence[Figure],
             extra: dict[str, Any] | None) -> dict[str, Any]:
    lang = page_lang(request)
    return {"title": title, "nav_key": NAV_KEY, "tabs": [
        (key, href, gettext(request, label)) for key, href, label in TABS],
        "tab": state.tab, "state": state, "figures": figures, "cell": cell, "lang": lang,
        **(extra or {})}


def translator(request: Request) -> Callable[[str], str]:
    return lambda message: gettext(request, message)


def _kind(request: Request, kind: str) -> str:
    return gettext(request, KIND_LABELS.get(kind, KIND_LABELS["other"]))


# --- channel journeys -----------------------------------------------------------------


def journey_figures(request: Request, r: JourneyReport) -> list[Figure]:
    t = translator(request)
    lang = page_lang(request)
    figs = []
    # By channel kind: the store -> web question at a glance.
    later_kinds = [k for k in KIND_ORDER if any(row.later.get(k) for row in r.kind_rows)]
    cols = [Col(t(N_("First purchase")), "first_kind", "text"),
            Col(t(N_("Customers")), "customers")]
    for k in later_kinds:
        cols += [Col(t(N_("Later: %(kind)s")) % {"kind": _kind(request, k)},
                     f"later_{k}"),
                 Col(t(N_("Share")), f"later_{k}_pct", "percent")]
    cols.append(Col(t(N_("No second purchase yet")), "one_time"))
    rows = []
    for krow in r.kind_rows:
        line: list[Any] = [_kind(request, krow.kind), krow.customers]
        for k in later_kinds:
            n = krow.later.get(k, 0)
            line += [n, n / krow.customers if krow.customers else None]
        line.append(krow.one_time)
        rows.append(line)
    title = t(N_("Where customers bought later, by their first channel"))
    chart: Markup | None = bar_chart(title, [_kind(request, k.kind) for k in r.kind_rows], [
        Series(t(N_("Later: %(kind)s")) % {"kind": _kind(request, k)},
               [pct(row.later.get(k, 0) / row.customers if row.customers else None)
                for row in r.kind_rows], "percent") for k in later_kinds], lang=lang)
    figs.append(Figure("kinds", title, cols, rows, chart=chart if later_kinds else None,
                       note=" ".join((t(N_(
                           "A customer counts once in every kind they bought in after their "
                           "first purchase; the shares are of the customers of the row.")),
                           t(WEB_TO_STORE_NOTE)))))
    # By channel: each store's till is a channel of its own (the first store).
    later = [c for c in r.channels if any(row.later.get(c.id) for row in r.rows)]
    cols = [Col(t(N_("First purchase")), "first_channel", "text"),
            Col(t(N_("Customers")), "customers")]
    for c in later:
        cols += [Col(c.name, f"later_{c.code}"), Col(t(N_("Share")), f"later_{c.code}_pct",
                                                     "percent")]
    cols.append(Col(t(N_("No second purchase yet")), "one_time"))
    rows = []
    for row in r.rows:
        line = [row.channel.name, row.customers]
        for c in later:
            n = row.later.get(c.id, 0)
            line += [n, n / row.customers if row.customers else None]
        line.append(row.one_time)
        rows.append(line)
    title = t(N_("Journey matrix: first channel → later channels"))
    chart = bar_chart(title, [row.channel.name for row in r.rows], [
        Series(c.name, [pct(row.later.get(c.id, 0) / row.customers if row.customers else None)
                        for row in r.rows], "percent") for c in later], lang=lang)
    figs.append(Figure("matrix", title, cols, rows, chart=chart if later else None))
    # Repeat and time to the second purchase.
    cols = [Col(t(N_("First purchase")), "first_channel", "text"),
            Col(t(N_("Customers")), "customers"),
            Col(t(N_("Bought again")), "repeat_customers"),
            Col(t(N_("Repeat rate")), "repeat_rate_pct", "percent"),
            Col(t(N_("Median days to the second purchase")), "median_days_to_second", "days"),
            Col(t(N_("Revenue")), "revenue_eur", "money")]
    rows = [[row.channel.name, row.customers, row.repeat, row.repeat_rate, row.median_days,
             row.revenue_cents] for row in r.rows]
    rows += [[t(N_("All: %(kind)s")) % {"kind": _kind(request, k.kind)}, k.customers, k.repeat,
              k.repeat_rate, k.median_days, k.revenue_cents] for k in r.kind_rows]
    title = t(N_("Repeat purchases by first channel"))
    chart = bar_chart(title, [row.channel.name for row in r.rows], [
        Series(t(N_("Repeat rate")), [pct(row.repeat_rate) for row in r.rows], "percent")],
        lang=lang) if r.rows else None
    figs.append(Figure("repeat", title, cols, rows, chart=chart))
    # Omnichannel shares.
    cols = [Col(t(N_("Customers who bought in")), "group", "text"),
            Col(t(N_("Customers")), "customers"),
            Col(t(N_("Share of customers")), "customers_pct", "percent"),
            Col(t(N_("Revenue")), "revenue_eur", "money"),
            Col(t(N_("Share of revenue")), "revenue_pct", "percent")]
    rows = [[t(N_("Two or more channel kinds (e.g. a store and the webshop)")),
             r.omni_kinds.customers, r.omni_kinds.customer_share, r.omni_kinds.revenue_cents,
             r.omni_kinds.revenue_share],
            [t(N_("Two or more channels (two stores count)")), r.omni_channels.customers,
             r.omni_channels.customer_share, r.omni_channels.revenue_cents,
             r.omni_channels.revenue_share],
            [t(N_("All customers with a purchase")), r.customers,
             1.0 if r.customers else None, r.revenue_cents, 1.0 if r.revenue_cents else None]]
    title = t(N_("Omnichannel customers"))
    chart = bar_chart(title, [t(N_("2+ channel kinds")), t(N_("2+ channels"))], [
        Series(t(N_("Share of customers")), [pct(row[2]) for row in rows[:2]], "percent"),
        Series(t(N_("Share of revenue")), [pct(row[4]) for row in rows[:2]], "percent")],
        lang=lang) if r.customers else None
    figs.append(Figure("omnichannel", title, cols, rows, chart=chart))
    # Lifetime value by journey.
    cols = [Col(t(N_("Journey")), "journey", "text"), Col(t(N_("Code")), "journey_key", "text"),
            Col(t(N_("Customers")), "customers"), Col(t(N_("Purchases")), "purchases"),
            Col(t(N_("Revenue")), "revenue_eur", "money"),
            Col(t(N_("Lifetime value per customer")), "ltv_eur", "money")]
    rows = [[journey_label(request, j.first_kind, j.other_kinds), j.key, j.customers,
             j.orders, j.revenue_cents, j.ltv_cents] for j in r.journeys]
    single = sum(j.customers for j in r.journeys if not j.several_kinds)
    multi = r.omni_kinds.customers
    rows += [[t(N_("One channel kind")), "single", single,
              sum(j.orders for j in r.journeys if not j.several_kinds),
              sum(j.revenue_cents for j in r.journeys if not j.several_kinds),
              r.single_kind_ltv_cents],
             [t(N_("Several channel kinds")), "omnichannel", multi,
              sum(j.orders for j in r.journeys if j.several_kinds),
              r.omni_kinds.revenue_cents, r.multi_kind_ltv_cents]]
    title = t(N_("Lifetime value by journey"))
    chart = hbar_chart(title, [str(row[0]) for row in rows], [row[5] for row in rows],
                       fmt="money", lang=lang) if r.journeys else None
    figs.append(Figure("ltv", title, cols, rows, chart=chart, note=t(N_(
        "A reservation to try made online and bought at the till counts as the webshop and "
        "the store: its customers are among those of several channel kinds."))))
    return figs


def journey_label(request: Request, first: str, others: Sequence[str]) -> str:
    if not others:
        return gettext(request, N_("%(kind)s only"), kind=_kind(request, first))
    return " → ".join([_kind(request, first), " + ".join(_kind(request, k) for k in others)])


@router.get("/customers")
async def customers_report(request: Request, actor: Chain, format: Text = "",
                           table: Text = "") -> Response:
    state = PageState("customers", "/backoffice/reports/customers")
    async with reports_db_of(request).reader() as s:
        r = await journey_report(s, actor)
    figures = journey_figures(request, r)
    return _page(request, state, gettext(request, N_("Channel journeys")), figures, format,
                 table, {"as_of": r.as_of, "summary": r})


# --- NPS ------------------------------------------------------------------------------


def _grain(request: Request, state: PageState, value: str) -> Grain:
    state.values["grain"] = value or "month"
    try:
        return Grain(value or "month")
    except ValueError:
        state.errors["grain"] = gettext(request, MESSAGES["invalid_grain"])
        return Grain.MONTH


def _this_year(today: date) -> Period:
    return Period(today.replace(month=1, day=1), today)


def nps_figures(request: Request, r: NpsReport, actor: Actor, tz: str) -> list[Figure]:
    t = translator(request)
    lang = page_lang(request)
    cols = [Col(t(N_("Channel")), "channel", "text"), Col(t(N_("NPS")), "nps", "score"),
            Col(t(N_("Answers")), "responses"), Col(t(N_("Promoters (9–10)")), "promoters"),
            Col(t(N_("Passives (7–8)")), "passives"),
            Col(t(N_("Detractors (0–6)")), "detractors"),
            Col(t(N_("Surveys sent")), "sent"),
            Col(t(N_("Response rate")), "response_rate_pct", "percent")]
    rows = [[c.name, f.nps, f.responses, f.promoters, f.passives, f.detractors, f.sent,
             f.response_rate] for c in r.channels for f in [r.by_channel[c.id]]]
    tot = r.total
    rows.append([t(N_("All channels")), tot.nps, tot.responses, tot.promoters, tot.passives,
                 tot.detractors, tot.sent, tot.response_rate])
    title = t(N_("NPS per channel"))
    chart: Markup | None = bar_chart(title, [str(row[0]) for row in rows], [
        Series(t(N_("NPS")), [None if row[1] is None else round(float(row[1]), 1)
                              for row in rows], "count")], lang=lang) if tot.responses else None
    figs = [Figure("channels", title, cols, rows, chart=chart)]
    cols = [Col(t(N_("Period")), "period_start", "text"), Col(t(N_("Channel")), "channel", "text"),
            Col(t(N_("NPS")), "nps", "score"), Col(t(N_("Answers")), "responses")]
    rows = []
    for b in r.buckets:
        for ch in [None, *r.channels]:
            f = r.over_time[b].get(None if ch is None else ch.id)
            if f is None:
                continue
            rows.append([b.isoformat(), t(N_("All channels")) if ch is None else ch.name,
                         f.nps, f.responses])
    title = t(N_("NPS over time"))
    series = []
    for ch in [None, *r.channels]:
        key = None if ch is None else ch.id
        values = [r.over_time[b].get(key) for b in r.buckets]
        series.append(Series(t(N_("All channels")) if ch is None else ch.name, [
            None if f is None or f.nps is None else round(f.nps, 1) for f in values],
            "count"))
    chart = line_chart(title, [b.isoformat() for b in r.buckets], series,
                       lang=lang) if tot.responses else None
    figs.append(Figure("time", title, cols, rows, chart=chart))
    may_see = actor.can("customers.read")
    cols = [Col(t(N_("Answered")), "answered_at", "text"), Col(t(N_("Score")), "score"),
            Col(t(N_("Channel")), "channel", "text"), Col(t(N_("Comment")), "comment", "text")]
    if may_see:
        cols.append(Col(t(N_("Customer")), "customer_id", "link"))
    rows = []
    for note in r.comments:
        line: list[Any] = [web_i18n.local_datetime(note.answered_at, lang, tz), note.score,
                           note.channel.name, note.comment]
        if may_see:
            line.append((str(note.customer_id), f"/backoffice/customers/{note.customer_id}"))
        rows.append(line)
    figs.append(Figure("comments", t(N_("Comments, newest first")), cols, rows))
    return figs


@router.get("/nps")
async def nps_page(request: Request, actor: Chain, since: Text = "", until: Text = "",
                   grain: Text = "", format: Text = "", table: Text = "") -> Response:
    state = PageState("nps", "/backoffice/reports/nps")
    tz = settings_of(request).timezone
    period = _period(request, state, since, until, _this_year)
    g = _grain(request, state, grain)
    figures: list[Figure] = []
    if period is not None and not state.errors:
        state.query += f"&grain={g.value}"
        async with reports_db_of(request).reader() as s:
            r = await nps_report(s, actor, period, g, tz)
        figures = nps_figures(request, r, actor, tz)
    return _page(request, state, gettext(request, N_("NPS")), figures, format, table,
                 {"grains": [(x.value, gettext(request, label)) for x, label in (
                     (Grain.DAY, N_("Day")), (Grain.WEEK, N_("Week")),
                     (Grain.MONTH, N_("Month")))]})


# --- funnel ---------------------------------------------------------------------------


@router.get("/funnel")
async def funnel_page(request: Request, actor: Chain, since: Text = "", until: Text = "",
                      format: Text = "", table: Text = "") -> Response:
    state = PageState("funnel", "/backoffice/reports/funnel")
    t = translator(request)
    lang = page_lang(request)
    period = _period(request, state, since, until)
    figures: list[Figure] = []
    if period is not None:
        async with reports_db_of(request).reader() as s:
            r = await funnel_report(s, actor, period, settings_of(request).timezone)
        step_cols = []
        for k in KINDS:
            step_cols.append(Col(t(STEP_LABELS[k]), k))
            if k != KINDS[0]:
                step_cols.append(Col(t(N_("Step conversion")), f"{k}_step_pct", "percent"))
        step_cols.append(Col(t(N_("Orders per visit")), "conversion_pct", "percent"))

        def steps(counts: Any) -> list[Any]:
            out: list[Any] = []
            for k in KINDS:
                out.append(counts.events[k])
                if k != KINDS[0]:
                    out.append(counts.step_conversion(k))
            out.append(counts.conversion)
            return out
        cols = [Col(t(N_("Device")), "device", "text"), *step_cols]
        rows = [[t(DEVICE_LABELS.get(d, d)), *steps(c)] for d, c in r.by_device.items()]
        rows.append([t(N_("All devices")), *steps(r.total)])
        title = t(N_("Funnel by device"))
        chart: Markup | None = bar_chart(title, [t(STEP_LABELS[k]) for k in KINDS], [
            Series(t(DEVICE_LABELS.get(d, d)), [c.events[k] for k in KINDS], "count")
            for d, c in r.by_device.items()], lang=lang) if r.by_device else None
        figures.append(Figure("devices", title, cols, rows, chart=chart))
        cols = [Col(t(N_("Day")), "day", "text"), Col(t(N_("Channel")), "channel", "text"),
                Col(t(N_("Device")), "device", "text"), *step_cols]
        rows = [[d.isoformat(), ch, t(DEVICE_LABELS.get(dev, dev)), *steps(c)]
                for d, ch, dev, c in r.sorted_rows()]
        title = t(N_("Funnel per day, channel and device"))
        days = sorted({d for d, _, _ in r.rows})
        chart = line_chart(t(N_("Orders per visit")), [d.isoformat() for d in days], [
            Series(t(DEVICE_LABELS.get(dev, dev)), [pct(_day_conversion(r, d, dev))
                                                    for d in days], "percent")
            for dev in r.by_device], lang=lang) if days else None
        figures.append(Figure("days", title, cols, rows, chart=chart))
        w = r.web_to_store
        made = sum(w.values())
        cols = [Col(t(N_("Figure")), "figure", "text"), Col(t(N_("Value")), "value")]
        rows = [[t(N_("Reserved to try on the web")), made],
                [t(N_("Bought in the store")), w.get("sold", 0)],
                [t(N_("Released")), w.get("released", 0)],
                [t(N_("Not collected")), w.get("expired", 0)],
                [t(N_("Still waiting at the store")), w.get("active", 0)]]
        figures.append(Figure("web_to_store", t(N_("Web visits that ended in a store")),
                              cols, rows, note=t(N_(
                                  "Reservations to try made in the period, by what became "
                                  "of them (docs/reserve-to-try.md)."))))
    return _page(request, state, t(N_("Conversion funnel")), figures, format, table)


def _day_conversion(r: FunnelReport, day: date, device: str) -> float | None:
    """Orders per visit of one day and device over every channel."""
    visits = orders = 0
    for (d, _, dev), c in r.rows.items():
        if d == day and dev == device:
            visits += c.events["visit"]
            orders += c.events["order_placed"]
    return orders / visits if visits else None


# --- loyalty --------------------------------------------------------------------------


def loyalty_figures(request: Request, r: LoyaltyReport) -> list[Figure]:
    t = translator(request)
    lang = page_lang(request)
    cols = [Col(t(N_("Figure")), "figure", "text"), Col(t(N_("Value")), "value")]
    rows = [[t(N_("Members now")), r.members],
            [t(N_("New members in the period")), r.new_members],
            [t(N_("Points issued")), r.issued], [t(N_("Points used")), r.used],
            [t(N_("Points expired")), r.expired],
            [t(N_("Points adjusted by staff")), r.points["adjust"]],
            [t(N_("Points taken back (returns)")), -r.points["reverse"]],
            [t(N_("Net change of all balances")), r.net_change]]
    figs = [Figure("summary", t(N_("Members and points")), cols, rows)]
    cols = [Col(t(N_("Ledger entry")), "kind", "text"), Col(t(N_("Code")), "kind_code", "text"),
            Col(t(N_("Points")), "points")]
    rows = [[t(LEDGER_LABELS[k]), k, v] for k, v in r.points.items() if k in LEDGER_LABELS]
    rows += [[t(N_("Earned in: %(channel)s")) % {"channel": ch}, "earn:" + ch, v]
             for ch, v in r.earned_by_channel.items()]
    figs.append(Figure("points", t(N_("Points by ledger entry")), cols, rows))
    tiers = ["member", "silver", "gold"]
    cols = [Col(t(N_("Tier")), "tier", "text"), Col(t(N_("At the start")), "members_at_start"),
            Col(t(N_("At the end")), "members_at_end")]
    rows = [[t(TIER_LABELS[x]), r.start_tiers[x], r.end_tiers[x]] for x in tiers]
    title = t(N_("Members per tier"))
    chart: Markup | None = bar_chart(title, [t(TIER_LABELS[x]) for x in tiers], [
        Series(t(N_("At the start")), [r.start_tiers[x] for x in tiers], "count"),
        Series(t(N_("At the end")), [r.end_tiers[x] for x in tiers], "count")], lang=lang)
    figs.append(Figure("tiers", title, cols, rows, chart=chart, note=t(N_(
        "Moved up: %(up)s · moved down: %(down)s · same tier: %(same)s")) % {
            "up": r.up, "down": r.down, "same": r.same}))
    cols = [Col(t(N_("From")), "from_tier", "text"), Col(t(N_("To")), "to_tier", "text"),
            Col(t(N_("Members")), "members")]
    order = [NEW, *tiers]
    rows = [[t(TIER_LABELS[a]), t(TIER_LABELS[b]), n] for (a, b), n in sorted(
        r.moves.items(), key=lambda m: (order.index(m[0][0]), order.index(m[0][1])))]
    figs.append(Figure("moves", t(N_("Tier movement")), cols, rows))
    return figs


@router.get("/loyalty")
async def loyalty_page(request: Request, actor: Chain, since: Text = "", until: Text = "",
                       format: Text = "", table: Text = "") -> Response:
    state = PageState("loyalty", "/backoffice/reports/loyalty")
    period = _period(request, state, since, until)
    figures: list[Figure] = []
    if period is not None:
        async with reports_db_of(request).reader() as s:
            r = await loyalty_report(s, actor, period, settings_of(request))
        figures = loyalty_figures(request, r)
    return _page(request, state, gettext(request, N_("Loyalty")), figures, format, table)

