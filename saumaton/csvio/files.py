"""Reading and writing CSV files.

Written for a Finnish Excel: `;` between columns, UTF-8 with a byte order mark (Excel
reads UTF-8 only with it), CRLF line ends, money with a decimal comma. Read: `;` or
`,` (whichever the header line uses), UTF-8 with or without the byte order mark; any
other encoding is refused with the line where it went wrong.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from saumaton.core.errors import ValidationFailed

BOM = "\ufeff"
DELIMITER = ";"
MAX_FIELD = 20_000
TRUE_WORDS = frozenset({"1", "yes", "y", "true", "kyllä", "k", "x"})
FALSE_WORDS = frozenset({"0", "no", "n", "false", "ei", "e"})


@dataclass(frozen=True)
class RowError:
    """An error of one row (row 1 is the header line, as Excel numbers them)."""

    row: int
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"row": self.row, "field": self.field, "code": self.code,
                "message": self.message}


def check_utf8(path: Path) -> None:
    """Raise `not_utf8` (with the line) unless the whole file is UTF-8 text."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += chunk[:exc.start].count(b"\n")
                raise ValidationFailed(
                    f"the file is not UTF-8 text (line {line}); save it from Excel as "
                    "'CSV UTF-8'", code="not_utf8", field="file",
                    extra={"line": line}) from None
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ValidationFailed("the file is not UTF-8 text (it ends mid-character)",
                                   code="not_utf8", field="file",
                                   extra={"line": line}) from None


def sniff_delimiter(first_line: str) -> str:
    return ";" if first_line.count(";") >= first_line.count(",") and ";" in first_line \
        else ","


class CsvRows:
    """The rows of a CSV file as dicts by (lower-cased) column name, streamed."""

    def __init__(self, path: Path, columns: Sequence[str], required: Sequence[str]) -> None:
        self.path = path
        with path.open(encoding="utf-8-sig", newline="") as f:
            first = f.readline()
        if not first.strip():
            raise ValidationFailed("the file is empty", code="empty_file", field="file")
        self.delimiter = sniff_delimiter(first)
        header = next(csv.reader([first], delimiter=self.delimiter))
        self.header = [h.strip().lower() for h in header]
        missing = [c for c in required if c not in self.header]
        if missing:
            raise ValidationFailed(
                f"the file has no column {', '.join(missing)}; the first line names the "
                f"columns: {', '.join(columns)}", code="missing_columns", field="file",
                extra={"columns": ", ".join(missing)})
        named = [h for h in self.header if h]  # Excel may add empty columns at the end
        if len(set(named)) != len(named):
            raise ValidationFailed("a column name repeats in the first line",
                                   code="duplicate_columns", field="file")

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        csv.field_size_limit(MAX_FIELD)
        with self.path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=self.delimiter)
            next(reader, None)
            for n, values in enumerate(reader, start=2):
                if not any(v.strip() for v in values):
                    continue  # an empty line (Excel writes some at the end)
                yield n, {h: (cell(values[i]) if i < len(values) else "")
                          for i, h in enumerate(self.header)}


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def excel_text(value: str) -> str:
    """A text that Excel would run as a formula ('=HYPERLINK(…)', a name typed in the
    webshop) is written with a leading apostrophe, which Excel shows as text; the
    importer takes it off again (`cell`), so the round trip is exact."""
    return "'" + value if value.startswith(FORMULA_START) else value


def cell(value: str) -> str:
    """A read value, spaces trimmed and `excel_text`'s apostrophe taken off."""
    v = value.strip()
    return v[1:] if v.startswith("'") and v[1:].startswith(FORMULA_START) else v


def batches(rows: Iterable[tuple[int, dict[str, str]]], size: int
            ) -> Iterator[list[tuple[int, dict[str, str]]]]:
    batch: list[tuple[int, dict[str, str]]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def count_rows(path: Path) -> int:
    """Data rows (not the header, not empty lines)."""
    csv.field_size_limit(MAX_FIELD)
    with path.open(encoding="utf-8-sig", newline="") as f:
        first = f.readline()
        if not first.strip():
            return 0
        reader = csv.reader(f, delimiter=sniff_delimiter(first))
        return sum(1 for values in reader if any(v.strip() for v in values))


def parse_euros(text: str) -> int | None:
    """'12,90', '12.90', '1 234,5', '12 €' in cents; None when empty. ValueError for
    anything else (negative, more than two decimals, letters)."""
    t = (text.replace("€", "").replace("\u00a0", "").replace(" ", "").replace(",", ".")
         .strip())
    if not t:
        return None
    try:
        d = Decimal(t)
    except InvalidOperation:
        raise ValueError(text) from None
    if not d.is_finite() or d < 0 or d != d.quantize(Decimal("0.01")) or d >= 10_000_000:
        raise ValueError(text)
    return int(d * 100)


def format_euros(cents: int | None) -> str:
    """'12,90' (a decimal comma, no thousands separator: Excel reads it as a number)."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100},{abs(cents) % 100:02d}"


def parse_bool(text: str) -> bool | None:
    t = text.strip().lower()
    if t in TRUE_WORDS:
        return True
    if t in FALSE_WORDS:
        return False
    return None


def format_bool(value: bool) -> str:
    return "yes" if value else "no"


def csv_line(values: Sequence[object]) -> str:
    """One line for a Finnish Excel: `;`, quoted where needed, CRLF."""
    buf = io.StringIO()
    csv.writer(buf, delimiter=DELIMITER, lineterminator="\r\n").writerow(
        ["" if v is None else v for v in values])
    return buf.getvalue()
