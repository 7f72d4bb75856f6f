"""The card terminal report's reading and matching, in process (no database): parse a
50 000-row terminal file, and pair 5 000 terminal rows of one store's day with 5 000 till
card payments (half by reference, half by amount and nearest time).

    PYTHONPATH=. python -m bench.card_terminal
"""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta

from saumaton.cardcash.models import TerminalRow
from saumaton.cardcash.terminal_reports import TillCard, pair, parse

HEADER = "date;time;terminal_id;store;amount;type;card_brand;masked_pan;auth_code;reference"


def _file(rows: int) -> bytes:
    lines = [HEADER]
    for i in range(rows):
        s = i % 36000
        clock = f"{8 + s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
        lines.append(f"2026-03-14;{clock};T{i % 7};store-1;{1 + i % 300},{i % 100:02d};"
                     f"purchase;Visa;************{i % 10000:04d};A{i};R{i}")
    return ("\r\n".join(lines) + "\r\n").encode()


def main() -> None:
    data = _file(50_000)
    t0 = time.perf_counter()
    parsed = parse(data, "Europe/Helsinki")
    t_parse = time.perf_counter() - t0
    rnd = random.Random(13)
    start = datetime(2026, 3, 14, 6, 0, tzinfo=UTC)
    rows, cards = [], []
    for i in range(5000):
        at = start + timedelta(seconds=rnd.randrange(12 * 3600))
        amount = rnd.randrange(100, 20000)
        ref = f"R{i}" if i % 2 else ""
        cards.append(TillCard("purchase", i, i, amount, at, ref, "to_confirm"))
        rows.append(TerminalRow(id=i, location_id=1, business_day=date(2026, 3, 14),
                                occurred_at=at + timedelta(seconds=rnd.randrange(-300, 300)),
                                terminal_id="T1", kind="purchase", amount_cents=amount,
                                card_brand="Visa", masked_pan="****1234", auth_code="",
                                reference=f"R{i}"))
    t0 = time.perf_counter()
    pairs = pair(rows, cards)
    t_pair = time.perf_counter() - t0
    print(f"parse 50 000 rows: {t_parse:.2f} s ({len(parsed)} rows)")
    print(f"pair 5 000 rows with 5 000 payments: {t_pair:.3f} s ({len(pairs)} pairs)")


if __name__ == "__main__":
    main()
