"""Reading Paytrail's payment reports (JSON or CSV) into settlement lines, exactly.

Paytrail's report rows carry euros as decimals at the top level (`amount: 25.55`,
`paymentMethodFee: 0.12`), dates as `DD-MM-YYYY`, `created` as `HH:mm` and one of the
documented status strings. JSON numbers are read as Decimal (never float), so 0.1 + 0.2
is 30 cents; a money value with more than two decimals is refused rather than rounded.

Accepted layouts:
- JSON: a list of row objects, or an object with the rows in `payments` and, optionally,
  the settlement's `settlementId`, `settlementReference`, `settledAt` and `payout`
  (euros) for rows that do not repeat them.
- CSV: a header of Paytrail's field names, `;`- (or `,`-) separated, UTF-8 (a BOM is
  fine), euros with a decimal comma or point; `refunditems` as
  `stamp:-4,00|stamp2:-5,00`.

A row with a negative amount is a refund deducted in the settlement; a payment row's
`refunditems` are refunds too (unless the same refund also has a row of its own). Rows
whose status is not `Paid` or `Paid and settled` moved no money and are skipped
(counted). Every error of the file is reported at once, each naming its row and field;
nothing of a bad file is kept.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from saumaton.core.errors import ValidationFailed

STATUSES = ("New", "Paid", "waiting for approval", "Cancelled", "Timeout", "Halted",
            "Delayed", "Paid and settled")
_STATUS_BY_LOWER = {s.lower(): s for s in STATUSES}
SETTLED_STATUSES = frozenset({"Paid", "Paid and settled"})
MAX_ROWS = 500_000
MAX_ERRORS = 200  # shown at once; a file with more has a systematic problem
_MONEY_LIMIT = Decimal("100000000")  # a single Paytrail payment is below 1 M €
FEE_FIELDS = ("paymentMethodFee", "paymentMethodCommission", "shopInShopCommission")


@dataclass(frozen=True)
class FileError:
    row: int  # 0: the file as a whole (CSV: the line; JSON: the position, 1 = first)
    field: str
    code: str
    value: str = ""


class ReportInvalid(ValidationFailed):
    """The report file cannot be imported; `errors` lists every problem found."""

    status = 422
    code = "invalid_settlement_report"

    def __init__(self, errors: list[FileError]) -> None:
        first = errors[0]
        super().__init__(
            f"the report has {len(errors)} error(s); first: row {first.row} "
            f"{first.field}: {first.code}", field="file",
            extra={"errors": [e.__dict__ for e in errors]})
        self.errors = errors


@dataclass
class ParsedLine:
    row: int
    kind: str  # payment | refund
    amount_cents: int  # positive
    stamp: str = ""
    reference: str = ""
    transaction_id: str = ""
    original_reference: str = ""
    status: str = ""
    entry_date: date | None = None
    fee_cents: int = 0
    commission_cents: int = 0
    shop_commission_cents: int = 0
    from_items: bool = False  # from a payment row's refunditems

    @property
    def fees_cents(self) -> int:
        return self.fee_cents + self.commission_cents + self.shop_commission_cents


@dataclass
class ParsedSettlement:
    paytrail_id: str
    reference: str = ""
    settled_on: date | None = None
    stated_payout_cents: int | None = None
    lines: list[ParsedLine] = field(default_factory=list)

    @property
    def payments_cents(self) -> int:
        return sum(x.amount_cents for x in self.lines if x.kind == "payment")

    @property
    def refunds_cents(self) -> int:
        return sum(x.amount_cents for x in self.lines if x.kind == "refund")

    @property
    def fees_cents(self) -> int:
        return sum(x.fees_cents for x in self.lines)


@dataclass
class ParsedReport:
    settlements: list[ParsedSettlement]
    ignored_rows: int = 0  # rows of other statuses (no money moved)


@dataclass(frozen=True)
class Defaults:
    """What the context knows about the settlement (a fetched report's request)."""

    paytrail_id: str = ""
    reference: str = ""
    settled_on: date | None = None
    stated_payout_cents: int | None = None


def euros_to_cents(value: object, *, signed: bool = False) -> int:
    """25.55, "25,55", "25.55", Decimal("25.55") → 2555. ValueError for anything that is
    not a whole number of cents (or negative, unless `signed`)."""
    if type(value) is Decimal:
        d = value
    elif isinstance(value, bool) or value is None:
        raise ValueError(value)
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, str):
        text = value.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
        if not text:
            raise ValueError(value)
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise ValueError(value) from None
    elif isinstance(value, Decimal | float):
        # a float (never from our JSON reader): its exact decimal text, not its binary
        d = Decimal(str(value))
    else:
        raise ValueError(value)
    if not d.is_finite():
        raise ValueError(value)
    hundred = d * 100
    cents = int(hundred)
    if hundred != cents or abs(d) >= _MONEY_LIMIT or (cents < 0 and not signed):
        raise ValueError(value)
    return cents


@lru_cache(maxsize=4096)
def parse_day(text: str) -> date:
    """DD-MM-YYYY (Paytrail's report dates); YYYY-MM-DD too (its settlementDate examples
    use both). A report has few distinct days: the answers are remembered."""
    t = text.strip()
    for fmt in ("%d-%m-%Y", "%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(t, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


_TIME = re.compile(r"([01]?\d|2[0-3]):[0-5]\d")


def _text(value: object) -> str:
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value).strip()


class _Reader:
    def __init__(self, defaults: Defaults) -> None:
        self.defaults = defaults
        self.errors: list[FileError] = []
        self.groups: dict[str, ParsedSettlement] = {}
        self.ignored = 0

    def error(self, row: int, name: str, code: str, value: object = "") -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(FileError(row, name, code, _text(value)[:80]))

    def money(self, row: int, values: dict[str, Any], name: str, *, signed: bool = False,
              required: bool = False) -> int:
        raw = values.get(name.lower())
        if raw is None or (type(raw) is str and not raw.strip()):
            if required:
                self.error(row, name, "required")
            return 0
        try:
            return euros_to_cents(raw, signed=signed)
        except ValueError:
            self.error(row, name, "invalid_amount", raw)
            return 0

    def refund_items(self, row: int, raw: object) -> list[tuple[str, int]]:
        items: list[tuple[str, int]] = []
        if raw is None or raw == "" or raw == []:
            return items
        pairs: list[tuple[object, object]] = []
        if isinstance(raw, list):
            for item in raw:
                if not isinstance(item, dict) or "amount" not in item:
                    self.error(row, "refunditems", "invalid_refunditems", json.dumps(
                        item, default=str))
                    return []
                pairs.append((item.get("stamp", ""), item["amount"]))
        elif isinstance(raw, str):
            for part in raw.split("|"):
                text_stamp, sep, text_amount = part.rpartition(":")
                if not sep:
                    self.error(row, "refunditems", "invalid_refunditems", part)
                    return []
                pairs.append((text_stamp, text_amount))
        else:
            self.error(row, "refunditems", "invalid_refunditems", raw)
            return []
        for item_stamp, amount in pairs:
            try:
                cents = euros_to_cents(amount, signed=True)
            except ValueError:
                self.error(row, "refunditems", "invalid_refunditems", amount)
                return []
            items.append((_text(item_stamp), abs(cents)))
        return items

    def row(self, n: int, values: dict[str, Any]) -> None:
        """One report row; keys lower-cased."""
        status_raw = _text(values.get("status"))
        status = _STATUS_BY_LOWER.get(status_raw.lower()) if status_raw else None
        if status_raw and status is None:
            self.error(n, "status", "unknown_status", status_raw)
        amount = self.money(n, values, "amount", signed=True, required=True)
        fees = [self.money(n, values, f) for f in FEE_FIELDS]
        entry: date | None = None
        if _text(values.get("entrydate")):
            try:
                entry = parse_day(_text(values["entrydate"]))
            except ValueError:
                self.error(n, "entryDate", "invalid_date", values["entrydate"])
        created = _text(values.get("created"))
        if created and _TIME.fullmatch(created) is None:
            self.error(n, "created", "invalid_time", created)
        settled_on = self.defaults.settled_on
        if _text(values.get("settlementdate")):
            try:
                settled_on = parse_day(_text(values["settlementdate"]))
            except ValueError:
                self.error(n, "settlementDate", "invalid_date", values["settlementdate"])
        sid = _text(values.get("settlementid")) or self.defaults.paytrail_id
        if not sid:
            self.error(n, "settlementId", "required")
        elif len(sid) > 40:
            self.error(n, "settlementId", "too_long", sid)
        stamp = _text(values.get("stamp"))
        reference = _text(values.get("reference"))
        txn = _text(values.get("transactionid")) or _text(values.get("archivenumber"))
        if not (stamp or reference or txn):
            self.error(n, "stamp", "no_identifier")
        for name, v in (("stamp", stamp), ("reference", reference), ("archiveNumber", txn)):
            if len(v) > 200:
                self.error(n, name, "too_long", v)
        refunds = self.refund_items(n, values.get("refunditems"))
        if status is not None and status not in SETTLED_STATUSES:
            self.ignored += 1
            return
        if self.errors or not sid:
            return  # keep reading for errors; nothing of a bad file is kept
        group = self.groups.get(sid)
        if group is None:
            group = self.groups[sid] = ParsedSettlement(
                sid, self.defaults.reference, settled_on, self.defaults.stated_payout_cents)
        ref = _text(values.get("settlementreference"))
        if ref:
            group.reference = ref[:40]
        if settled_on is not None:
            group.settled_on = settled_on
        common = {"status": status or "", "entry_date": entry}
        group.lines.append(ParsedLine(
            n, "refund" if amount < 0 else "payment", abs(amount), stamp=stamp,
            reference=reference, transaction_id=txn,
            original_reference=_text(values.get("originaltradereference"))[:200],
            fee_cents=fees[0], commission_cents=fees[1], shop_commission_cents=fees[2],
            **common))  # type: ignore[arg-type]
        for refund_stamp, cents in refunds:
            group.lines.append(ParsedLine(n, "refund", cents, stamp=refund_stamp,
                                          original_reference=reference, from_items=True,
                                          **common))  # type: ignore[arg-type]

    def result(self) -> ParsedReport:
        if self.errors:
            raise ReportInvalid(self.errors)
        for group in self.groups.values():
            # A refund with a row of its own is not counted again from refunditems.
            own = {x.stamp for x in group.lines
                   if x.kind == "refund" and x.stamp and not x.from_items}
            group.lines = [x for x in group.lines if not (x.from_items and x.stamp in own)]
        if not self.groups and not self.ignored:
            raise ReportInvalid([FileError(0, "file", "no_rows")])
        return ParsedReport(list(self.groups.values()), self.ignored)


def _json_rows(data: bytes, reader: _Reader) -> list[Any] | None:
    try:
        doc = json.loads(data.decode("utf-8-sig"), parse_float=Decimal)
    except UnicodeDecodeError:
        reader.error(0, "file", "not_utf8")
        return None
    except ValueError as exc:
        reader.error(0, "file", "invalid_json", str(exc))
        return None
    if isinstance(doc, dict):
        d = {k.lower(): v for k, v in doc.items()}
        defaults = reader.defaults
        payout = defaults.stated_payout_cents
        if d.get("payout") is not None:
            try:
                payout = euros_to_cents(d["payout"], signed=True)
            except ValueError:
                reader.error(0, "payout", "invalid_amount", d["payout"])
        settled_on = defaults.settled_on
        day = _text(d.get("settledat") or d.get("settlementdate"))
        if day:
            try:
                settled_on = parse_day(day)
            except ValueError:
                reader.error(0, "settledAt", "invalid_date", day)
        reader.defaults = Defaults(
            _text(d.get("settlementid")) or defaults.paytrail_id,
            _text(d.get("settlementreference")) or defaults.reference, settled_on, payout)
        doc = d.get("payments")
    if not isinstance(doc, list):
        reader.error(0, "file", "invalid_layout")
        return None
    return doc


def _csv_rows(data: bytes, reader: _Reader) -> list[tuple[int, dict[str, str]]] | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        reader.error(0, "file", "not_utf8")
        return None
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(rows, None)
    if not header:
        reader.error(0, "file", "no_rows")
        return None
    keys = [h.strip().lower() for h in header]
    if "amount" not in keys:
        reader.error(1, "amount", "missing_column")
        return None
    out = []
    for n, values in enumerate(rows, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(keys):
            reader.error(n, "file", "wrong_column_count", len(values))
            continue
        out.append((n, dict(zip(keys, values, strict=True))))
    return out


def parse_report(data: bytes, filename: str = "", defaults: Defaults | None = None
                 ) -> ParsedReport:
    """The settlements (grouped by settlementId) in a report file. ReportInvalid with
    every error when the file is not right."""
    reader = _Reader(defaults or Defaults())
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    is_json = filename.lower().endswith(".json") or head in (b"[", b"{")
    numbered: list[tuple[int, Any]] = []
    if is_json:
        doc = _json_rows(data, reader)
        if doc is not None:
            numbered = list(enumerate(doc, start=1))
    else:
        numbered = _csv_rows(data, reader) or []
    if len(numbered) > MAX_ROWS:
        raise ReportInvalid([FileError(0, "file", "too_many_rows", str(len(numbered)))])
    lowered: dict[Any, str] = {}  # each key lower-cased once, not once per row
    for n, values in numbered:
        if not isinstance(values, dict):
            reader.error(n, "row", "invalid_layout")
            continue
        reader.row(n, {lowered.get(k) or lowered.setdefault(k, str(k).lower()): v
                       for k, v in values.items()})
    if reader.errors:
        raise ReportInvalid(reader.errors)
    return reader.result()
