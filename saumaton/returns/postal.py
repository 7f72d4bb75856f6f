"""Starting a postal return for a shopper (their account page, the service desk, the
API): the units are set aside (`services.request_post_return`) and the shopper is
e-mailed the return's code and where to send the parcel, in the same transaction."""

from __future__ import annotations

from sqlalchemy import select

from saumaton.checkout.pickup import customer_contact
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.db.uow import UnitOfWork
from saumaton.mail import return_messages
from saumaton.mail.queue import queue_mail
from saumaton.orders.models import Order
from saumaton.returns.models import Return
from saumaton.returns.schemas import PostReturnIn, ReturnOut
from saumaton.returns.services import request_post_return


def post_return_address(settings: Settings) -> str:
    """Where a postal return is sent: the business's address."""
    return f"{settings.business_name}, {settings.business_address}"


async def order_email(uow: UnitOfWork, order_id: int) -> str:
    """Where the shopper of an order is e-mailed: the order's address, else the
    customer's ("" when neither is known)."""
    order = await uow.session.get(Order, order_id)
    if order is None:
        return ""
    _, email = await customer_contact(uow.session, order.customer_id)
    return order.email or email


async def start_post_return(uow: UnitOfWork, actor: Actor, order_id: int, cmd: PostReturnIn,
                            *, channel: str, customer_id: int | None,
                            idempotency_key: str | None, settings: Settings, email: str,
                            lang: str, page_url: str) -> tuple[ReturnOut, bool]:
    """Start the return and queue its e-mail to `email` (none when empty). Returns
    (return, replayed): a key seen before returns the first return and sends nothing
    again. `page_url` + the code is the shopper's page of the return."""
    seen = idempotency_key is not None and await uow.session.scalar(
        select(Return.id).where(Return.idempotency_key == idempotency_key)) is not None
    ret = await request_post_return(uow, actor, order_id, cmd, channel=channel,
                                    customer_id=customer_id,
                                    idempotency_key=idempotency_key, settings=settings)
    if email and not seen:
        mail = return_messages.return_started(
            ret, lang=lang, settings=settings, address=post_return_address(settings),
            page_url=page_url + ret.code)
        await queue_mail(uow, kind="return_started", to=email, subject=mail.subject,
                         text=mail.text, html=mail.html, reference=ret.code)
    return ret, seen
