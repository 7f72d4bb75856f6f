"""Transfers between locations with an in-transit state.

* send: the units leave the sender's shelf at once (a strict `transfer_out` move per
  line: never more than the sender has available, the same rule as the instant
  transfer and a web sale). From then on they are in transit: on no shelf, sellable
  nowhere, left out of every availability figure.
* receive: the receiver posts what actually arrived per line (default: what was sent);
  `transfer_in` moves put that on the receiver's shelf. A difference (lost or broken on
  the way, or more than was sent) stays recorded on the line.
* cancel (before receipt): the units go back on the sender's shelf.
* request (an endless-aisle sale collected at another store, tills.aisle): the transfer
  is `requested`, tied to the order; the units stay on the sender's shelf, held there
  for it (a reservation with reference ``transfer:<id>``, counted against every
  channel's availability) until the sender marks them sent (`send_requested`): then
  they leave the shelf and are in transit as above. Units of it the order no longer
  wants before it was sent (returned at the till: `call_back_for_order`) come off it,
  their holds released; a transfer left with nothing is cancelled. Nothing moves: they
  never left the sender's shelf.

Receive and cancel each claim the transfer with one conditional UPDATE, so a transfer
is received or cancelled exactly once even when two people press at the same moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.catalogue.models import Product, Variant
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, OutOfStock, ValidationFailed
from saumaton.db.uow import UnitOfWork
from saumaton.inventory.models import StockReservation, StockTransfer, StockTransferLine
from saumaton.inventory.services import Move, apply_moves, ensure_levels, release, reserve
from saumaton.locations.models import Location

MAX_LINES = 500
# Units that arrived for an order are held this long, until the store marks the order
# ready for pickup (which sets the pickup hold, fulfilment.steps.mark_ready).
ORDER_HOLD = timedelta(days=30)
MAX_QUANTITY = 1_000_000


@dataclass(frozen=True)
class TransferLineOut:
    variant_id: int
    sku: str
    ean: str | None
    name: str
    quantity_sent: int
    quantity_received: int | None

    @property
    def difference(self) -> int | None:
        """received − sent (negative: missing), None until received."""
        if self.quantity_received is None:
            return None
        return self.quantity_received - self.quantity_sent


@dataclass(frozen=True)
class TransferOut:
    id: int
    from_location_id: int
    from_name: str
    to_location_id: int
    to_name: str
    status: str
    note: str
    sent_by: str
    sent_at: datetime
    received_by: str
    received_at: datetime | None
    lines: tuple[TransferLineOut, ...]

    @property
    def units_sent(self) -> int:
        return sum(ln.quantity_sent for ln in self.lines)

    @property
    def has_difference(self) -> bool:
        return any(ln.difference for ln in self.lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "from_location_id": self.from_location_id,
            "to_location_id": self.to_location_id, "status": self.status, "note": self.note,
            "sent_by": self.sent_by, "sent_at": self.sent_at.isoformat(),
            "received_by": self.received_by,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "lines": [{"variant_id": ln.variant_id, "sku": ln.sku,
                       "quantity_sent": ln.quantity_sent,
                       "quantity_received": ln.quantity_received,
                       "difference": ln.difference} for ln in self.lines],
        }


def merge_lines(lines: Sequence[tuple[int, int]]) -> dict[int, int]:
    """(variant_id, quantity) pairs → quantity per variant (a variant scanned twice
    is one line)."""
    out: dict[int, int] = {}
    for vid, qty in lines:
        out[vid] = out.get(vid, 0) + qty
    return out


async def _location_ids(session: AsyncSession, ids: set[int]) -> set[int]:
    return set((await session.scalars(select(Location.id).where(Location.id.in_(ids)))).all())


async def check_variants(session: AsyncSession, variant_ids: Sequence[int]) -> None:
    known = set((await session.scalars(
        select(Variant.id).where(Variant.id.in_(list(variant_ids))))).all())
    missing = [v for v in variant_ids if v not in known]
    if missing:
        raise NotFound(f"no variant {missing[0]}", code="variant_not_found",
                       field="lines", extra={"variant_id": missing[0]})


async def send(uow: UnitOfWork, actor: Actor, from_location_id: int, to_location_id: int,
               lines: Sequence[tuple[int, int]], *, note: str = "",
               idempotency_key: str | None = None) -> TransferOut:
    """Send goods: they leave the sender's shelf now and are in transit until received.
    Refuses a line the sender does not have available (`out_of_stock`, the variant in
    `extra`), moving nothing."""
    actor.require("stock.write", from_location_id)
    return await send_unchecked(uow, actor, from_location_id, to_location_id, lines,
                                note=note, idempotency_key=idempotency_key)


async def send_unchecked(uow: UnitOfWork, actor: Actor, from_location_id: int,
                         to_location_id: int, lines: Sequence[tuple[int, int]], *,
                         note: str = "", idempotency_key: str | None = None,
                         order_id: int | None = None) -> TransferOut:
    """`send` for a caller that has checked the actor's right to move these goods
    itself. With `order_id` the goods are for that order: on receipt they are held at
    the receiver for it (see `_hold_for_order`; the endless aisle requests such a
    transfer with `request_for_order` and the sender sends it with `send_requested`)."""
    if from_location_id == to_location_id:
        raise ValidationFailed("a transfer needs two different locations",
                               code="same_location", field="to_location_id")
    if len(await _location_ids(uow.session, {from_location_id, to_location_id})) != 2:
        raise NotFound("no such location", code="location_not_found",
                       field="to_location_id")
    merged = merge_lines(lines)
    if not merged:
        raise ValidationFailed("a transfer needs at least one line", code="no_lines",
                               field="lines")
    if len(merged) > MAX_LINES:
        raise ValidationFailed(f"at most {MAX_LINES} lines", code="too_many_lines",
                               field="lines")
    if any(q <= 0 or q > MAX_QUANTITY for q in merged.values()):
        raise ValidationFailed("each quantity must be positive", code="invalid_quantity",
                               field="lines")
    note = note.strip()
    if len(note) > 200:
        raise ValidationFailed("a note has at most 200 characters", code="note_too_long",
                               field="note")
    await check_variants(uow.session, list(merged))
    transfer = StockTransfer(from_location_id=from_location_id, to_location_id=to_location_id,
                             status="in_transit", note=note, sent_by=actor.label,
                             sent_at=utcnow(), idempotency_key=idempotency_key,
                             order_id=order_id)
    uow.session.add(transfer)
    try:
        await uow.session.flush()
    except IntegrityError:
        raise Conflict("this transfer was sent already", code="duplicate_transfer") from None
    uow.session.add_all([StockTransferLine(transfer_id=transfer.id, variant_id=vid,
                                           quantity_sent=qty)
                         for vid, qty in sorted(merged.items())])
    await uow.session.flush()
    ref = f"transfer:{transfer.id}"
    # The receiver gets its (zero) level rows now: its "in transit" figure is listed.
    await ensure_levels(uow, {(vid, to_location_id) for vid in merged})
    # One strict move per line: each takes stock out only if it is there.
    for vid, qty in sorted(merged.items()):
        try:
            await apply_moves(uow, actor, [Move(
                vid, from_location_id, -qty, "transfer_out", strict=True,
                reason=f"to location {to_location_id}", reference=ref)])
        except OutOfStock as exc:
            raise OutOfStock(f"not enough stock of variant {vid} to send",
                             field="lines", extra={"variant_id": vid}) from exc
    await record(uow, actor, "stock.transfer.send", "stock_transfer", transfer.id, {
        "from_location_id": from_location_id, "to_location_id": to_location_id,
        "lines": [[vid, qty] for vid, qty in sorted(merged.items())], "note": note})
    uow.emit("stock.transfer", {"transfer_id": transfer.id, "status": "in_transit",
                                "from_location_id": from_location_id,
                                "to_location_id": to_location_id})
    return await get_transfer(uow.session, transfer.id)


def _checked_lines(lines: Sequence[tuple[int, int]], note: str) -> tuple[dict[int, int], str]:
    merged = merge_lines(lines)
    if not merged:
        raise ValidationFailed("a transfer needs at least one line", code="no_lines",
                               field="lines")
    if any(q <= 0 or q > MAX_QUANTITY for q in merged.values()):
        raise ValidationFailed("each quantity must be positive", code="invalid_quantity",
                               field="lines")
    return merged, note.strip()[:200]


async def request_for_order(uow: UnitOfWork, actor: Actor, from_location_id: int,
                            to_location_id: int, lines: Sequence[tuple[int, int]], *,
                            order_id: int, note: str = "",
                            idempotency_key: str | None = None) -> TransferOut:
    """A transfer the sender has yet to send, for an order collected at the receiver:
    the units are held at the sender now (strictly: 409 `out_of_stock` when they are not
    there), not moved. The caller has checked the actor's right (the till's sale)."""
    merged, note = _checked_lines(lines, note)
    if from_location_id == to_location_id:
        raise ValidationFailed("a transfer needs two different locations",
                               code="same_location", field="to_location_id")
    await check_variants(uow.session, list(merged))
    now = utcnow()
    transfer = StockTransfer(from_location_id=from_location_id, to_location_id=to_location_id,
                             status="requested", note=note, sent_by="", sent_at=now,
                             idempotency_key=idempotency_key, order_id=order_id)
    uow.session.add(transfer)
    try:
        await uow.session.flush()
    except IntegrityError:
        raise Conflict("this transfer was requested already",
                       code="duplicate_transfer") from None
    uow.session.add_all([StockTransferLine(transfer_id=transfer.id, variant_id=vid,
                                           quantity_sent=qty)
                         for vid, qty in sorted(merged.items())])
    await uow.session.flush()
    await ensure_levels(uow, {(vid, to_location_id) for vid in merged})
    for vid, qty in sorted(merged.items()):
        try:
            await reserve(uow, actor, vid, from_location_id, qty,
                          reference=f"transfer:{transfer.id}", ttl=ORDER_HOLD, now=now)
        except OutOfStock as exc:
            raise OutOfStock(f"not enough stock of variant {vid} to send",
                             field="lines", extra={"variant_id": vid}) from exc
    await record(uow, actor, "stock.transfer.request", "stock_transfer", transfer.id, {
        "from_location_id": from_location_id, "to_location_id": to_location_id,
        "lines": [[vid, qty] for vid, qty in sorted(merged.items())], "note": note,
        "order_id": order_id})
    uow.emit("stock.transfer", {"transfer_id": transfer.id, "status": "requested",
                                "from_location_id": from_location_id,
                                "to_location_id": to_location_id})
    return await get_transfer(uow.session, transfer.id)


async def send_requested(uow: UnitOfWork, actor: Actor, transfer_id: int) -> TransferOut:
    """The sender marks a requested transfer sent: claimed by one conditional UPDATE
    (sent once, even when two people press at once; else 409
    `transfer_not_requested`), its holds closed and the units taken off the sender's
    shelf (strict `transfer_out` moves) in the same transaction: in transit now."""
    t = await uow.session.get(StockTransfer, transfer_id)
    if t is None:
        raise NotFound(f"no transfer {transfer_id}", code="transfer_not_found")
    actor.require("stock.write", t.from_location_id)
    res = await uow.session.execute(
        update(StockTransfer)
        .where(StockTransfer.id == transfer_id, StockTransfer.status == "requested")
        .values(status="in_transit", sent_by=actor.label, sent_at=utcnow())
        .returning(StockTransfer.id)
        .execution_options(synchronize_session=False))
    if res.first() is None:
        raise Conflict("this transfer is not waiting to be sent",
                       code="transfer_not_requested")
    ref = f"transfer:{transfer_id}"
    holds = (await uow.session.scalars(select(StockReservation.id).where(
        StockReservation.location_id == t.from_location_id,
        StockReservation.reference == ref, StockReservation.status == "active"))).all()
    for hold_id in holds:
        await release(uow, int(hold_id))
    lines = (await uow.session.execute(
        select(StockTransferLine.variant_id, StockTransferLine.quantity_sent)
        .where(StockTransferLine.transfer_id == transfer_id)
        .order_by(StockTransferLine.variant_id))).all()
    for vid, qty in lines:
        try:
            await apply_moves(uow, actor, [Move(
                int(vid), t.from_location_id, -int(qty), "transfer_out", strict=True,
                reason=f"to location {t.to_location_id}", reference=ref)])
        except OutOfStock as exc:
            raise OutOfStock(f"not enough stock of variant {vid} to send",
                             field="lines", extra={"variant_id": int(vid)}) from exc
    await record(uow, actor, "stock.transfer.send", "stock_transfer", transfer_id, {
        "from_location_id": t.from_location_id, "to_location_id": t.to_location_id,
        "lines": [[int(v), int(q)] for v, q in lines], "order_id": t.order_id})
    uow.emit("stock.transfer", {"transfer_id": transfer_id, "status": "in_transit",
                                "from_location_id": t.from_location_id,
                                "to_location_id": t.to_location_id})
    return await get_transfer(uow.session, transfer_id)


async def _still_requested(uow: UnitOfWork, transfer_id: int) -> bool:
    """Claim a requested transfer for a change (a no-op UPDATE: on PostgreSQL its row
    lock makes a concurrent `send_requested` wait, then send what is left); False when
    it was sent or cancelled already."""
    res = await uow.session.execute(
        update(StockTransfer)
        .where(StockTransfer.id == transfer_id, StockTransfer.status == "requested")
        .values(status="requested").returning(StockTransfer.id)
        .execution_options(synchronize_session=False))
    return res.first() is not None


async def _release_holds(uow: UnitOfWork, t: StockTransfer, variant_id: int | None = None
                         ) -> None:
    q = select(StockReservation.id).where(
        StockReservation.location_id == t.from_location_id,
        StockReservation.reference == f"transfer:{t.id}", StockReservation.status == "active")
    if variant_id is not None:
        q = q.where(StockReservation.variant_id == variant_id)
    for hold_id in (await uow.session.scalars(q)).all():
        await release(uow, int(hold_id))


async def call_back_for_order(uow: UnitOfWork, actor: Actor, order_id: int,
                              wanted: dict[tuple[int, int], int], *, reason: str = ""
                              ) -> dict[tuple[int, int], int]:
    """Units of an order the customer no longer wants (returned at the till) that are on
    a transfer for it not yet sent: `wanted` maps (variant, sending location) → units.
    They come off the transfer and their hold at the sender is released (the rest of a
    line stays held, for what is still to be sent); a transfer left with nothing is
    cancelled (`stock.transfer.cancel`, reason `returned`). Nothing moves: the units
    never left the sender's shelf. Returns what was taken off, per (variant, location):
    less than wanted when the transfer was sent meanwhile (those units are in transit)
    or held fewer. The caller has checked the actor's right (the till's return)."""
    wanted = {k: q for k, q in wanted.items() if q > 0}
    if not wanted:
        return {}
    taken: dict[tuple[int, int], int] = {}
    transfers = (await uow.session.scalars(
        select(StockTransfer).where(
            StockTransfer.order_id == order_id, StockTransfer.status == "requested",
            StockTransfer.from_location_id.in_({loc for _, loc in wanted}))
        .order_by(StockTransfer.id))).all()
    for t in transfers:
        if not await _still_requested(uow, t.id):
            continue
        lines = list((await uow.session.scalars(
            select(StockTransferLine).where(StockTransferLine.transfer_id == t.id)
            .order_by(StockTransferLine.variant_id))).all())
        off: dict[int, int] = {}
        for ln in lines:
            key = (ln.variant_id, t.from_location_id)
            q = min(wanted.get(key, 0) - taken.get(key, 0), ln.quantity_sent)
            if q > 0:
                off[ln.variant_id] = q
                taken[key] = taken.get(key, 0) + q
        if not off:
            continue
        if all(off.get(ln.variant_id, 0) >= ln.quantity_sent for ln in lines):
            await _cancel_requested(uow, actor, t, reason)
            continue
        for ln in lines:
            q = off.get(ln.variant_id, 0)
            if not q:
                continue
            # The line's hold is made again for what is still to be sent.
            ln.quantity_sent -= q
            await _release_holds(uow, t, ln.variant_id)
            if ln.quantity_sent > 0:
                with suppress(OutOfStock):  # sold below zero meanwhile: the send refuses
                    await reserve(uow, actor, ln.variant_id, t.from_location_id,
                                  ln.quantity_sent, reference=f"transfer:{t.id}",
                                  ttl=ORDER_HOLD)
        await uow.session.execute(
            delete(StockTransferLine).where(StockTransferLine.transfer_id == t.id,
                                            StockTransferLine.quantity_sent <= 0)
            .execution_options(synchronize_session=False))
        await uow.session.flush()
        await record(uow, actor, "stock.transfer.reduce", "stock_transfer", t.id, {
            "lines": [[vid, -q] for vid, q in sorted(off.items())], "order_id": order_id,
            "reason": reason[:200]})
        uow.emit("stock.transfer", {"transfer_id": t.id, "status": "requested",
                                    "from_location_id": t.from_location_id,
                                    "to_location_id": t.to_location_id})
    return taken


async def _cancel_requested(uow: UnitOfWork, actor: Actor, t: StockTransfer,
                            reason: str) -> None:
    """A requested transfer (claimed by the caller) called back whole: its holds at the
    sender released, nothing moved."""
    await uow.session.execute(
        update(StockTransfer).where(StockTransfer.id == t.id)
        .values(status="cancelled", received_by=actor.label, received_at=utcnow())
        .execution_options(synchronize_session=False))
    await _release_holds(uow, t)
    await record(uow, actor, "stock.transfer.cancel", "stock_transfer", t.id,
                 {"was": "requested", "order_id": t.order_id, "reason": reason[:200]})
    uow.emit("stock.transfer", {"transfer_id": t.id, "status": "cancelled",
                                "from_location_id": t.from_location_id,
                                "to_location_id": t.to_location_id})


async def _claim(uow: UnitOfWork, transfer_id: int, status: str, actor: Actor,
                 permission: str, end: str) -> StockTransfer:
    t = await uow.session.get(StockTransfer, transfer_id)
    if t is None:
        raise NotFound(f"no transfer {transfer_id}", code="transfer_not_found")
    actor.require(permission, t.to_location_id if end == "to" else t.from_location_id)
    res = await uow.session.execute(
        update(StockTransfer)
        .where(StockTransfer.id == transfer_id, StockTransfer.status == "in_transit")
        .values(status=status, received_by=actor.label, received_at=utcnow())
        .returning(StockTransfer.id)
        .execution_options(synchronize_session=False))
    if res.first() is None:
        raise Conflict("this transfer is no longer in transit", code="transfer_not_in_transit")
    return t


async def receive(uow: UnitOfWork, actor: Actor, transfer_id: int,
                  received: dict[int, int] | None = None, *, note: str = "") -> TransferOut:
    """Post what arrived. `received` maps variant → units that arrived (a line left out:
    all that was sent). A variant that was not on the transfer is refused."""
    received = received or {}
    if any(q < 0 or q > MAX_QUANTITY for q in received.values()):
        raise ValidationFailed("a received quantity cannot be negative",
                               code="invalid_quantity", field="lines")
    note = note.strip()
    if len(note) > 200:
        raise ValidationFailed("a note has at most 200 characters", code="note_too_long",
                               field="note")
    t = await _claim(uow, transfer_id, "received", actor, "stock.write", "to")
    lines = list((await uow.session.scalars(
        select(StockTransferLine).where(StockTransferLine.transfer_id == transfer_id)
        .order_by(StockTransferLine.variant_id))).all())
    unknown = set(received) - {ln.variant_id for ln in lines}
    if unknown:
        raise ValidationFailed(f"variant {min(unknown)} is not on this transfer",
                               code="not_on_transfer", field="lines")
    moves = []
    got: dict[int, int] = {}
    for ln in lines:
        qty = received.get(ln.variant_id, ln.quantity_sent)
        got[ln.variant_id] = qty
        if qty:
            moves.append(Move(ln.variant_id, t.to_location_id, qty, "transfer_in",
                              reason=f"from location {t.from_location_id}",
                              reference=f"transfer:{transfer_id}"))
    await uow.session.execute(  # every line's received quantity in one statement
        update(StockTransferLine), [{"id": ln.id, "quantity_received": got[ln.variant_id]}
                                    for ln in lines])
    if note:
        text = f"{t.note} / {note}" if t.note else note
        await uow.session.execute(
            update(StockTransfer).where(StockTransfer.id == transfer_id)
            .values(note=text[:200]).execution_options(synchronize_session=False))
    if moves:
        await apply_moves(uow, actor, moves)
    if t.order_id is not None:  # goods for an order: held here until it is collected
        await _hold_for_order(uow, actor, t, got)
    differences = {vid: got[vid] - ln.quantity_sent for ln in lines
                   if (vid := ln.variant_id) and got[vid] != ln.quantity_sent}
    await record(uow, actor, "stock.transfer.receive", "stock_transfer", transfer_id, {
        "received": [[vid, q] for vid, q in sorted(got.items())],
        "differences": [[vid, d] for vid, d in sorted(differences.items())], "note": note})
    uow.emit("stock.transfer", {"transfer_id": transfer_id, "status": "received",
                                "from_location_id": t.from_location_id,
                                "to_location_id": t.to_location_id})
    return await get_transfer(uow.session, transfer_id)


async def _hold_for_order(uow: UnitOfWork, actor: Actor, t: StockTransfer,
                          got: dict[int, int]) -> None:
    """The units that arrived for an order are reserved at the receiver under the order's
    number (what the handover at the till consumes); a unit the shelf cannot cover any
    more (sold meanwhile into negative stock) is taken from the shelf at handover."""
    assert t.order_id is not None
    reference = f"{t.order_id:06d}"  # orders.services.order_number
    ttl = ORDER_HOLD
    for vid, qty in sorted(got.items()):
        if qty <= 0:
            continue
        try:
            await reserve(uow, actor, vid, t.to_location_id, qty, reference=reference,
                          ttl=ttl)
        except OutOfStock:
            continue


async def cancel(uow: UnitOfWork, actor: Actor, transfer_id: int) -> TransferOut:
    """Call a transfer back before it was received: the units return to the sender."""
    t = await _claim(uow, transfer_id, "cancelled", actor, "stock.write", "from")
    lines = list((await uow.session.scalars(
        select(StockTransferLine).where(StockTransferLine.transfer_id == transfer_id))).all())
    await apply_moves(uow, actor, [
        Move(ln.variant_id, t.from_location_id, ln.quantity_sent, "transfer_in",
             reason=f"transfer {transfer_id} cancelled", reference=f"transfer:{transfer_id}")
        for ln in lines])
    await record(uow, actor, "stock.transfer.cancel", "stock_transfer", transfer_id, {})
    uow.emit("stock.transfer", {"transfer_id": transfer_id, "status": "cancelled",
                                "from_location_id": t.from_location_id,
                                "to_location_id": t.to_location_id})
    return await get_transfer(uow.session, transfer_id)


# --- reading ------------------------------------------------------------------------


async def _names(session: AsyncSession) -> dict[int, str]:
    return {i: n for i, n in (await session.execute(select(Location.id, Location.name))).all()}


async def _outs(session: AsyncSession, transfers: Sequence[StockTransfer]) -> list[TransferOut]:
    if not transfers:
        return []
    names = await _names(session)
    ids = [t.id for t in transfers]
    rows = (await session.execute(
        select(StockTransferLine, Variant.sku, Variant.ean, Product.name, Variant.name)
        .join(Variant, Variant.id == StockTransferLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(StockTransferLine.transfer_id.in_(ids))
        .order_by(StockTransferLine.transfer_id, StockTransferLine.id)
        .execution_options(populate_existing=True))).all()
    by: dict[int, list[TransferLineOut]] = {}
    for ln, sku, ean, pname, vname in rows:
        by.setdefault(ln.transfer_id, []).append(TransferLineOut(
            ln.variant_id, sku, ean, f"{pname} {vname}".strip(), ln.quantity_sent,
            ln.quantity_received))
    return [TransferOut(t.id, t.from_location_id, names.get(t.from_location_id, ""),
                        t.to_location_id, names.get(t.to_location_id, ""), t.status, t.note,
                        t.sent_by, t.sent_at, t.received_by, t.received_at,
                        tuple(by.get(t.id, []))) for t in transfers]


async def for_order(session: AsyncSession, order_id: int) -> list[TransferOut]:
    """The transfers that bring an order's goods to its pickup store (endless aisle)."""
    rows = (await session.scalars(select(StockTransfer).where(
        StockTransfer.order_id == order_id).order_by(StockTransfer.id))).all()
    return await _outs(session, rows)


async def get_transfer(session: AsyncSession, transfer_id: int) -> TransferOut:
    t = await session.get(StockTransfer, transfer_id, populate_existing=True)
    if t is None:
        raise NotFound(f"no transfer {transfer_id}", code="transfer_not_found")
    [out] = await _outs(session, [t])
    return out


async def find_by_key(session: AsyncSession, key: str) -> TransferOut | None:
    t = await session.scalar(select(StockTransfer).where(StockTransfer.idempotency_key == key))
    return await get_transfer(session, t.id) if t else None


async def list_transfers(session: AsyncSession, actor: Actor, *, status: str = "",
                         location_id: int | None = None, limit: int = 50,
                         offset: int = 0) -> list[TransferOut]:
    """Newest first; only transfers from or to a location `actor` may read stock at."""
    q = select(StockTransfer).order_by(StockTransfer.id.desc()).limit(limit).offset(offset)
    if status:
        q = q.where(StockTransfer.status == status)
    if location_id is not None:
        q = q.where((StockTransfer.from_location_id == location_id)
                    | (StockTransfer.to_location_id == location_id))
    if not actor.can("stock.read", everywhere=True):
        mine = [loc for loc in actor.location_ids if loc is not None
                and actor.can("stock.read", loc)]
        q = q.where(StockTransfer.from_location_id.in_(mine)
                    | StockTransfer.to_location_id.in_(mine))
    return await _outs(session, list((await session.scalars(
        q.execution_options(populate_existing=True))).all()))


def may_read(actor: Actor, t: TransferOut) -> bool:
    return (actor.can("stock.read", t.from_location_id)
            or actor.can("stock.read", t.to_location_id))


async def in_transit(session: AsyncSession, *, variant_ids: Sequence[int] | None = None,
                     location_id: int | None = None) -> dict[tuple[int, int], int]:
    """Units on their way to each (variant_id, receiving location_id): sent, not yet
    received or cancelled. They are on no shelf and in no availability figure."""
    q = (select(StockTransferLine.variant_id, StockTransfer.to_location_id,
                func.sum(StockTransferLine.quantity_sent))
         .join(StockTransfer, StockTransfer.id == StockTransferLine.transfer_id)
         .where(StockTransfer.status == "in_transit")
         .group_by(StockTransferLine.variant_id, StockTransfer.to_location_id))
    if variant_ids is not None:
        q = q.where(StockTransferLine.variant_id.in_(list(variant_ids)))
    if location_id is not None:
        q = q.where(StockTransfer.to_location_id == location_id)
    return {(int(v), int(loc)): int(n) for v, loc, n in (await session.execute(q)).all()}
