"""A till receipt sent by e-mail after the sale (the till's "e-mail the receipt" and the
API's), composed as the printed one and queued in the caller's transaction."""

from __future__ import annotations

from saumaton.checkout.pickup import customer_contact
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.errors import ValidationFailed
from saumaton.customers.identities import normalise_email
from saumaton.db.uow import UnitOfWork
from saumaton.locations.models import Location
from saumaton.mail.messages import receipt
from saumaton.mail.queue import queue_mail
from saumaton.orders.services import get_order


async def email_receipt(uow: UnitOfWork, actor: Actor, order_id: int, to: str, *,
                        settings: Settings) -> str:
    """Queue the receipt of a store sale to `to` (normalised; 422 when it is no e-mail
    address); needs orders.create at the sale's store. Returns the address used."""
    s = uow.session
    order = await get_order(s, order_id)
    if order.location_id is None:
        raise ValidationFailed("only a store sale has a till receipt",
                               code="not_a_store_sale")
    actor.require("orders.create", order.location_id)
    address = normalise_email(to)
    store = await s.get(Location, order.location_id)
    assert store is not None
    name, _ = await customer_contact(s, order.customer_id)
    mail = receipt(order, settings=settings, store_name=store.name,
                   store_address=store.address, customer_name=name)
    await queue_mail(uow, kind="receipt", to=address, subject=mail.subject, text=mail.text,
                     html=mail.html, reference=order.number)
    return address
