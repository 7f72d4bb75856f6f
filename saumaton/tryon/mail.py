"""The shopper's mails about a reservation to try, in her language (fi/en)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton import i18n
from saumaton.catalogue.models import Product, Variant
from saumaton.config import Settings
from saumaton.i18n import N_
from saumaton.locations.models import Location
from saumaton.mail.messages import Mail
from saumaton.mail.render import gettext, mail_language, render_mail
from saumaton.tryon.services import TryOut


async def _names(s: AsyncSession, r: TryOut) -> tuple[str, str]:
    row = (await s.execute(select(Product.name, Variant.name).join(
        Variant, Variant.product_id == Product.id).where(Variant.id == r.variant_id))).one()
    product = f"{row[0]} – {row[1]}" if row[1] else str(row[0])
    store = await s.get(Location, r.location_id)
    return product, store.name if store is not None else ""


def _until(at: datetime, lang: str, settings: Settings) -> str:
    return format_datetime(at, "short", tzinfo=ZoneInfo(settings.timezone),
                           locale=i18n.LOCALES[lang])


def _mail(template: str, subject: str, lang: str, settings: Settings, **ctx: object) -> Mail:
    text, html = render_mail(template, lang, settings, {"subject": subject, **ctx})
    return Mail(subject=subject, text=text, html=html)


async def released_note(s: AsyncSession, r: TryOut, settings: Settings) -> Mail:
    """A no-show: the hold ended and the unit went back to the shelf. Friendly."""
    lang = mail_language(r.language, settings)
    product, store = await _names(s, r)
    subject = gettext(lang, N_("Your reservation to try has ended – %(shop)s"),
                      shop=settings.business_name)
    paragraphs = [
        gettext(lang, N_("We kept %(product)s for you to try at %(store)s until %(date)s. "
                         "The reservation has now ended and the product is back on the "
                         "shelf."), product=product, store=store,
                date=_until(r.expires_at, lang, settings)),
        gettext(lang, N_("No harm done: you are welcome to reserve it again in the webshop, "
                         "or just drop by.")),
    ]
    return _mail("try_note", subject, lang, settings, name=r.name.split(" ")[0],
                 paragraphs=paragraphs, code=r.code, product=product)


async def reserved_note(s: AsyncSession, r: TryOut, settings: Settings) -> Mail:
    """The confirmation: the code and until when the unit waits."""
    lang = mail_language(r.language, settings)
    product, store = await _names(s, r)
    subject = gettext(lang, N_("Reserved for you to try: %(code)s – %(shop)s"),
                      code=r.code, shop=settings.business_name)
    paragraphs = [
        gettext(lang, N_("%(product)s waits for you to try at %(store)s until %(date)s. "
                         "Show the code at the till; you pay only if you buy it."),
                product=product, store=store,
                date=_until(r.expires_at, lang, settings)),
    ]
    return _mail("try_note", subject, lang, settings, name=r.name.split(" ")[0],
                 paragraphs=paragraphs, code=r.code, product=product)
