"""Receipt numbers: each register's own sequence, e.g. "1-000042" (register 1, receipt 42).

The receipt act (Act 658/2013, 2 §) asks for an identification number on every
receipt. Order numbers are shared by every channel, so a till's receipts numbered
by them would have the webshop's orders in the gaps; each register therefore keeps
its own counter (`registers.last_receipt_no`), moved forward in the sale's own
transaction: a sale that fails takes no number, and two sales never share one (the
UPDATE holds the register's row until the sale commits). A sale takes its number as
its last statement: the register's row is then held only for the commit, and always
after the sale's stock rows (taking it first would deadlock a till sale with an API
sale into the same drawer, which locks them in the other order).

A sale made offline prints its till-made number (`orders.client_ref`) and gets its
register number when it reaches the server.
"""

from __future__ import annotations

from sqlalchemy import select, update

from saumaton.core.errors import NotFound
from saumaton.db.uow import UnitOfWork
from saumaton.orders.models import Order
from saumaton.tills.models import DrawerSession, Register

DIGITS = 6


def format_receipt_no(register_id: int, seq: int) -> str:
    return f"{register_id}-{seq:0{DIGITS}d}"


def receipt_seq(receipt_no: str) -> int | None:
    """The sequence part of a receipt number ("1-000042" -> 42), None if it has none."""
    _, sep, seq = receipt_no.rpartition("-")
    return int(seq) if sep and seq.isdigit() else None


def _sql_receipt_no(register_id: str, seq: str) -> str:
    """The same text as `format_receipt_no`, as a PostgreSQL expression over two
    integer expressions (for statements that take the number and write it at once)."""
    return (f"({register_id})::text || '-' || lpad(({seq})::text, "
            f"greatest({DIGITS}, length(({seq})::text)), '0')")


# $1: register id. A prepared statement on the driver (see UnitOfWork.fetchrow).
_PG_NEXT_SQL = ("UPDATE registers SET last_receipt_no = last_receipt_no + 1 WHERE id = $1 "
                "RETURNING last_receipt_no")
# The next number of the register of drawer session $2, written on order $1 at once.
_PG_ASSIGN_SQL = f"""
WITH r AS (
    UPDATE registers SET last_receipt_no = last_receipt_no + 1
    WHERE id = (SELECT register_id FROM drawer_sessions WHERE id = $2)
    RETURNING id, last_receipt_no
)
UPDATE orders SET receipt_no = (SELECT {_sql_receipt_no('r.id', 'r.last_receipt_no')} FROM r)
WHERE id = $1 RETURNING receipt_no"""


async def next_receipt_no(uow: UnitOfWork, register_id: int) -> str:
    """The register's next receipt number, taken in `uow`'s transaction."""
    if uow.db.is_postgres:
        row = await uow.fetchrow(_PG_NEXT_SQL, register_id)
        seq = None if row is None else int(row[0])
    else:
        seq = (await uow.session.execute(
            update(Register).where(Register.id == register_id)
            .values(last_receipt_no=Register.last_receipt_no + 1)
            .returning(Register.last_receipt_no)
            .execution_options(synchronize_session=False))).scalar_one_or_none()
    if seq is None:
        raise NotFound(f"no register {register_id}", code="register_not_found")
    return format_receipt_no(register_id, int(seq))


async def assign_receipt_no(uow: UnitOfWork, order_id: int, session_id: int) -> str:
    """Give order `order_id` (a store sale in drawer session `session_id`) the next
    number of the session's register. Called last before the commit, it holds the
    register's row only for the commit: sales sharing a register (API clients selling
    into the store's open drawer) wait for one another only that long."""
    if uow.db.is_postgres:
        row = await uow.fetchrow(_PG_ASSIGN_SQL, order_id, session_id)
        if row is None or row[0] is None:
            raise NotFound(f"no order {order_id} in drawer session {session_id}",
                           code="drawer_session_invalid")
        return str(row[0])
    s = uow.session
    register_id = await s.scalar(select(DrawerSession.register_id)
                                 .where(DrawerSession.id == session_id))
    if register_id is None:
        raise NotFound(f"no drawer session {session_id}", code="drawer_session_invalid")
    receipt_no = await next_receipt_no(uow, int(register_id))
    await s.execute(update(Order).where(Order.id == order_id).values(receipt_no=receipt_no)
                    .execution_options(synchronize_session=False))
    return receipt_no
