"""Reconciling one Paytrail settlement of 100,000 payments: parse + import + matching.

Builds a fresh PostgreSQL database of its own (`reconcile_bench`, dropped afterwards
unless --keep), fills it in bulk with N paid web orders and their paytrail_payments
rows (plus Paytrail refunds of 1 % of them), writes Paytrail's report file of the
settlement (JSON, euros as decimals; or CSV with --csv) with a few rows that must not
match (unknown payments, amounts that differ) and a few of ours left out, then times:

1. parse    reading the file into lines (Decimal euros → cents)
2. import   inserting the settlement and its lines (one unnest INSERT) and matching
            them (one UPDATE … FROM per rule), committed
3. views    the month at a glance and the discrepancy list

    python -m bench.reconcile [--payments 100000] [--csv] [--keep]
        [--admin postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg

from bench.common import write_result
from saumaton.core.actor import SYSTEM
from saumaton.db.migrate import upgrade
from saumaton.db.uow import Database
from saumaton.reports.period import Period
from saumaton.settlements.parsing import parse_report
from saumaton.settlements.services import discrepancies, import_report, month_view

DB_NAME = "reconcile_bench"
DAY = date(2026, 11, 3)
SETTLED = date(2026, 11, 10)
LATER = date(2026, 12, 31)
UNKNOWN, MISMATCH, LEFT_OUT = 10, 10, 10

# NOT NULL columns without a server default get a neutral value by type.
_NEUTRAL = {"integer": "0", "bigint": "0", "smallint": "0", "boolean": "false",
            "character varying": "''", "text": "''", "json": "'{}'", "jsonb": "'{}'",
            "timestamp with time zone": "now()", "date": "current_date"}


async def _fill_columns(conn: asyncpg.Connection, table: str, given: dict[str, str]
                        ) -> tuple[str, str]:
    rows = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 "
        "AND is_nullable = 'NO' AND column_default IS NULL", table)
    values = dict(given)
    for r in rows:
        values.setdefault(r["column_name"], _NEUTRAL[r["data_type"]])
    return ", ".join(values), ", ".join(values.values())


async def build(dsn: str, n: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        channel = await conn.fetchval(
            "INSERT INTO channels (code, kind, name, active) VALUES ('web', 'webshop', "
            "'Webshop', true) RETURNING id") if await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'channels' "
            "AND column_name = 'active'") else await conn.fetchval(
            "INSERT INTO channels (code, kind, name) VALUES ('web', 'webshop', 'Webshop') "
            "RETURNING id")
        at = f"'{datetime(DAY.year, DAY.month, DAY.day, 9, tzinfo=UTC).isoformat()}'"
        cols, vals = await _fill_columns(conn, "orders", {
            "id": "g", "channel_id": str(channel), "status": "'paid'",
            "total_cents": "1000 + (g % 9000)", "paid_cents": "1000 + (g % 9000)",
            "created_at": f"{at}::timestamptz + (g || ' seconds')::interval"})
        await conn.execute(f"INSERT INTO orders ({cols}) SELECT {vals} "
                           f"FROM generate_series(1, {n}) AS g")
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('orders', 'id'), {n})")
        cols, vals = await _fill_columns(conn, "paytrail_payments", {
            "id": "g", "order_id": "g", "stamp": "'st-' || g", "transaction_id": "'tx-' || g",
            "amount_cents": "1000 + (g % 9000)", "status": "'ok'", "provider": "'nordea'",
            "created_at": f"{at}::timestamptz + (g || ' seconds')::interval",
            "updated_at": f"{at}::timestamptz + (g || ' seconds')::interval"})
        await conn.execute(f"INSERT INTO paytrail_payments ({cols}) SELECT {vals} "
                           f"FROM generate_series(1, {n}) AS g")
        cols, vals = await _fill_columns(conn, "refunds", {
            "order_id": "g", "method": "'paytrail'", "status": "'ok'", "amount_cents": "500",
            "refund_stamp": "'rf-' || g", "provider_refund_id": "'rid-' || g",
            "reference": "'tx-' || g",
            "created_at": f"{at}::timestamptz + (g || ' seconds')::interval",
            "updated_at": f"{at}::timestamptz + (g || ' seconds')::interval"})
        await conn.execute(f"INSERT INTO refunds ({cols}) SELECT {vals} "
                           f"FROM generate_series(1, {n}, 100) AS g")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


MONEY = ("amount", "paymentMethodFee", "paymentMethodCommission", "shopInShopCommission")


def report_file(n: int, as_csv: bool) -> bytes:
    """The settlement's report: every payment but the last LEFT_OUT, one refund row per
    refund, UNKNOWN payments not ours, MISMATCH amounts that differ."""
    sid, ref, settled = "bench-1", "90012345", SETTLED.strftime("%d-%m-%Y")
    entry = DAY.strftime("%d-%m-%Y")
    rows: list[dict[str, object]] = []  # money in cents here
    for g in range(1, n - LEFT_OUT + 1):
        amount = 1000 + g % 9000
        rows.append({"entryDate": entry, "created": "10:15",
                     "amount": amount + (1 if g <= MISMATCH else 0),
                     "status": "Paid and settled", "reference": f"{g:06d}", "stamp": f"st-{g}",
                     "archiveNumber": f"tx-{g}", "paymentMethod": "nordea",
                     "settlementId": sid, "settlementDate": settled,
                     "settlementReference": ref, "paymentMethodFee": 25,
                     "paymentMethodCommission": amount * 15 // 1000,
                     "shopInShopCommission": 0, "originalTradeReference": ""})
    for g in range(1, n + 1, 100):
        rows.append({"entryDate": entry, "created": "12:00", "amount": -500,
                     "status": "Paid and settled", "reference": f"{g:06d}", "stamp": f"rf-{g}",
                     "archiveNumber": f"rid-{g}", "paymentMethod": "nordea",
                     "settlementId": sid, "settlementDate": settled,
                     "settlementReference": ref, "paymentMethodFee": 0,
                     "paymentMethodCommission": 0, "shopInShopCommission": 0,
                     "originalTradeReference": f"{g:06d}"})
    for u in range(UNKNOWN):
        rows.append({**rows[0], "stamp": f"stranger-{u}", "reference": f"X{u}",
                     "archiveNumber": f"ax-{u}"})
    if as_csv:
        def comma(v: object, key: str) -> str:
            if key not in MONEY:
                return str(v)
            c = int(str(v))
            return f"{'-' if c < 0 else ''}{abs(c) // 100},{abs(c) % 100:02d}"
        header = list(rows[0])
        lines = [";".join(header)] + [";".join(comma(r[k], k) for k in header) for r in rows]
        return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()
    # euros as JSON numbers (25.55): the float's repr is the exact two-decimal text
    return json.dumps([{k: (int(str(v)) / 100 if k in MONEY else v) for k, v in r.items()}
                       for r in rows]).encode()


async def run(url: str) -> list[tuple[str, float]]:
    """What `python -m bench.reports` calls: the run below on a database of its own on
    the same server as `url` (the scaled data is not needed), figures against 10 s."""
    admin_dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1).rsplit("/", 1)[0]
    return await main(argparse.Namespace(payments=100_000, csv=False, keep=False,
                                         admin=admin_dsn + "/postgres"))


async def main(args: argparse.Namespace) -> list[tuple[str, float]]:
    admin = await asyncpg.connect(args.admin)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await admin.close()
    dsn = args.admin.rsplit("/", 1)[0] + "/" + DB_NAME
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        await asyncio.to_thread(upgrade, url)
        t = time.perf_counter()
        await build(dsn, args.payments)
        built = time.perf_counter() - t
        data = report_file(args.payments, args.csv)
        path = Path(tempfile.mkdtemp()) / ("settlement.csv" if args.csv else "settlement.json")
        path.write_bytes(data)
        db = Database(url)
        try:
            t0 = time.perf_counter()
            report = parse_report(path.read_bytes(), path.name)
            t1 = time.perf_counter()
            async with db.uow() as uow:
                out = await import_report(uow, SYSTEM, report, source="file",
                                          filename=path.name)
                await uow.commit()
            t2 = time.perf_counter()
            async with db.reader() as s:
                view = await month_view(s, Period.month(DAY.year, DAY.month), "Europe/Helsinki",
                                        LATER, 7)
                found = await discrepancies(s, Period.month(SETTLED.year, SETTLED.month),
                                            "Europe/Helsinki", LATER, 7)
            t3 = time.perf_counter()
            async with db.uow() as uow:  # the same file again: nothing changes
                again = await import_report(uow, SYSTEM, parse_report(path.read_bytes(),
                                                                      path.name),
                                            source="file")
                await uow.commit()
            t4 = time.perf_counter()
        finally:
            await db.dispose()
        causes: dict[str, int] = {}
        for d in found:
            causes[d.cause] = causes.get(d.cause, 0) + 1
        lines = sum(len(x.lines) for x in report.settlements)
        print(f"data: {args.payments} paid orders + payments, {args.payments // 100} refunds "
              f"(built in {built:.1f} s); report {path.name} {len(data) / 1e6:.1f} MB, "
              f"{lines} lines")
        print(f"parse   {t1 - t0:6.2f} s")
        print(f"import  {t2 - t1:6.2f} s  (insert lines + match + commit)")
        print(f"total   {t2 - t0:6.2f} s  parse + import + matching")
        print(f"views   {t3 - t2:6.2f} s  (month at a glance + discrepancy list)")
        print(f"again   {t4 - t3:6.2f} s  (re-import: unchanged={again.unchanged == out.imported})")
        print(f"month: lines {view.lines}, reconciled {view.reconciled}, "
              f"discrepancies {view.discrepancies}, payout {view.payout_cents / 100:.2f} €, "
              f"fees {view.fees_cents / 100:.2f} €")
        print(f"causes: {dict(sorted(causes.items()))}")
        write_result("reconcile", {
            "payments": args.payments, "format": "csv" if args.csv else "json",
            "lines": lines, "parse_s": round(t1 - t0, 3), "import_s": round(t2 - t1, 3),
            "total_s": round(t2 - t0, 3), "views_s": round(t3 - t2, 3),
            "reimport_s": round(t4 - t3, 3), "causes": causes})
        expected = {"amount_mismatch": MISMATCH, "settled_unknown": UNKNOWN,
                    "not_settled": LEFT_OUT}
        assert causes == expected, causes
        return [(f"parse + import + matching, {args.payments:,} payments", t2 - t0),
                ("month at a glance + discrepancy list", t3 - t2)]
    finally:
        if not args.keep:
            admin = await asyncpg.connect(args.admin)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            finally:
                await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--csv", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(main(parser.parse_args()))
