"""Receipt numbers: each register has its own sequence (the receipt act's
identification number), so a till's receipts never share numbers with web orders."""

from __future__ import annotations

from sqlalchemy import update

from saumaton.db.uow import UnitOfWork
from saumaton.tills.models import Register


async def next_receipt_no(uow: UnitOfWork, register_id: int) -> str:
    """The register's next receipt number, e.g. "1-000042" (one conditional UPDATE:
    two sales at one register never get the same number)."""
    n = (await uow.session.execute(
        update(Register).where(Register.id == register_id)
        .values(last_receipt_no=Register.last_receipt_no + 1)
        .returning(Register.last_receipt_no)
        .execution_options(synchronize_session=False))).scalar_one()
    return f"{register_id}-{int(n):06d}"
