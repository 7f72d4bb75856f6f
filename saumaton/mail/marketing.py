"""Marketing mail: queued only with the customer's marketing e-mail consent in force,
checked again by the sender when it sends (mail/sender.py: status 'suppressed'), and
carrying a one-click unsubscribe (RFC 8058) in its headers and its body.

The unsubscribe link's token is the customer id and the consent kind signed with the
shop's secret key (itsdangerous): nothing is stored per mail, the link never expires
(a years-old mail still unsubscribes), and a changed character fails the signature.
Withdrawing through it (`unsubscribe`) is idempotent: a second POST writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from itsdangerous import BadData, URLSafeSerializer
from markupsafe import escape
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from saumaton.audit.services import record
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError
from saumaton.customers.consents import CONSENT_KINDS, set_consent
from saumaton.customers.models import Customer, CustomerConsent
from saumaton.db.uow import UnitOfWork
from saumaton.mail.queue import queue_mail
from saumaton.mail.render import gettext, mail_language

CONSENT = "marketing_email"
CHANNEL = "unsubscribe_link"  # the consent history's channel of a withdrawal by the link
PATH = "/unsubscribe/"
_SALT = "saumaton.mail.unsubscribe"  # a token signed for anything else never passes
MAX_TOKEN = 200  # characters: a real token is about 60


class BadUnsubscribeLink(DomainError):
    """The link's token is not one this shop signed (cut short, changed, another key)."""

    status = 400
    code = "invalid_unsubscribe_link"


@dataclass(frozen=True)
class Unsubscribed:
    customer_id: int  # the customer now (a merged one's kept customer)
    kind: str
    changed: bool  # False: the consent was off already (a repeated click)


@lru_cache(maxsize=4)
def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=_SALT)


def unsubscribe_token(settings: Settings, customer_id: int, kind: str = CONSENT) -> str:
    return str(_serializer(settings.resolved_secret_key()).dumps([int(customer_id), kind]))


def unsubscribe_url(settings: Settings, customer_id: int) -> str:
    """The absolute one-click URL: the List-Unsubscribe header's and the mail body's
    link (https in production: SAUMATON_PUBLIC_URL must be https there)."""
    return settings.resolved_public_url() + PATH + unsubscribe_token(settings, customer_id)


def read_token(settings: Settings, token: str) -> tuple[int, str]:
    """(customer id, consent kind) of a token this shop signed, else BadUnsubscribeLink."""
    try:
        if len(token) > MAX_TOKEN:
            raise BadData("too long")
        value = _serializer(settings.resolved_secret_key()).loads(token)
        customer_id, kind = value
        if not isinstance(customer_id, int) or isinstance(customer_id, bool) \
                or customer_id < 1 or kind not in CONSENT_KINDS:
            raise BadData("not an unsubscribe token")
    except (BadData, TypeError, ValueError) as exc:
        raise BadUnsubscribeLink(
            "this unsubscribe link is not valid; check that the whole link was copied",
            field="token") from exc
    return customer_id, str(kind)


async def consenting(session: AsyncSession, customer_ids: Iterable[int]) -> set[int]:
    """Those of `customer_ids` whose marketing e-mail consent is in force now (their
    newest consent row says yes) and who are neither merged away nor erased: one
    statement, a probe of ix_customer_consents_newest per id."""
    ids = sorted(set(customer_ids))
    if not ids:
        return set()
    newer = aliased(CustomerConsent)
    rows = await session.scalars(
        select(CustomerConsent.customer_id)
        .join(Customer, Customer.id == CustomerConsent.customer_id)
        .where(CustomerConsent.customer_id.in_(ids), CustomerConsent.kind == CONSENT,
               CustomerConsent.granted.is_(True), Customer.merged_into_id.is_(None),
               Customer.erased_at.is_(None),
               ~exists().where(newer.customer_id == CustomerConsent.customer_id,
                               newer.kind == CustomerConsent.kind,
                               newer.id > CustomerConsent.id)))
    return {int(r) for r in rows}


def unsubscribe_footer(settings: Settings, customer_id: int, lang: str) -> tuple[str, str]:
    """(text, html) of the line with the visible unsubscribe link, in `lang`, for a mail
    body (queue_marketing_mail adds it itself when a body lacks the link)."""
    lang = mail_language(lang, settings)
    url = unsubscribe_url(settings, customer_id)
    words = gettext(lang, "You get this e-mail because you allowed us to send you offers "
                          "and news. Unsubscribe with one click:")
    link = gettext(lang, "Unsubscribe")
    return (f"\n\n--\n{words}\n{url}\n",
            f'<p style="font-size:12px;color:#666">{escape(words)} '
            f'<a href="{escape(url)}">{escape(link)}</a></p>')


async def queue_marketing_mail(uow: UnitOfWork, settings: Settings, *, customer_id: int,
                               kind: str, to: str, subject: str, text: str, html: str = "",
                               reference: str = "") -> int | None:
    """Queue a marketing mail to `customer_id` if their marketing e-mail consent is in
    force now; None (nothing queued) if not. The mail carries the List-Unsubscribe
    headers; a body that does not show the unsubscribe link gets it appended (in the
    shop's default language: put `unsubscribe_footer(…, lang)` in the body to choose).
    The sender checks the consent again when it sends."""
    if customer_id not in await consenting(uow.session, [customer_id]):
        return None
    url = unsubscribe_url(settings, customer_id)
    if url not in text or (html and url not in html):
        foot_text, foot_html = unsubscribe_footer(settings, customer_id,
                                                  settings.default_language)
        if url not in text:
            text += foot_text
        if html and url not in html:
            html = _before_body_end(html, foot_html)
    return await queue_mail(uow, kind=kind, to=to, subject=subject, text=text, html=html,
                            reference=reference, customer_id=customer_id,
                            list_unsubscribe=url)


def _before_body_end(html: str, fragment: str) -> str:
    at = html.lower().rfind("</body>")
    return html + fragment if at < 0 else html[:at] + fragment + html[at:]


async def unsubscribe(uow: UnitOfWork, settings: Settings, token: str) -> Unsubscribed:
    """Withdraw the consent the link names, at once; a repeat changes nothing. A merged
    customer's link withdraws the kept customer's consent (theirs now)."""
    from saumaton.customers.duplicates import resolve_customer_id

    customer_id, kind = read_token(settings, token)
    cid = await resolve_customer_id(uow.session, customer_id)
    customer = await uow.session.get(Customer, cid)
    if customer is None or customer.erased_at is not None:  # nothing left to withdraw
        return Unsubscribed(cid, kind, changed=False)
    changed = await set_consent(uow, cid, kind, False, CHANNEL)
    if changed:
        await record(uow, Actor(label=f"customer:{cid}", name="customer"),
                     "customer.consent", "customer", cid,
                     {"kind": kind, "granted": False, "channel": CHANNEL})
    return Unsubscribed(cid, kind, changed)
