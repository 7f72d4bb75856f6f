"""The mails the shop sends, rendered in the shopper's language (fi/en)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from babel import Locale

from saumaton import i18n
from saumaton.checkout.pickup import pickup_code_for
from saumaton.config import Settings
from saumaton.giftcards.qr import SoldCard
from saumaton.i18n import N_
from saumaton.mail.render import gettext, mail_language, render_mail
from saumaton.orders.schemas import OrderOut
from saumaton.returns.schemas import CreditReceipt

RESET_LINK_HOURS = 1
VERIFY_LINK_HOURS = 48


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str


def _mail(name: str, subject: str, lang: str, settings: Settings, **context: object) -> Mail:
    text, html = render_mail(name, lang, settings, {"subject": subject, **context})
    return Mail(subject=subject, text=text, html=html)


def country_name(code: str, lang: str) -> str:
    name = Locale.parse(i18n.LOCALES[lang]).territories.get(code.upper())
    return str(name) if name else code


def order_confirmation(order: OrderOut, *, status_url: str, lang: str, settings: Settings,
                       pickup_store_name: str | None) -> Mail:
    """Lines with any campaign discount, delivery and its fee, total, VAT per rate and
    the status link; for click & collect the store and the pickup code (text and QR)."""
    lang = mail_language(lang, settings)
    address = order.delivery.address if order.delivery else None
    country = country_name(address.get("country") or "FI", lang) if address else ""
    subject = gettext(lang, N_("Order %(number)s confirmed – %(shop)s"),
                      number=order.number, shop=settings.business_name)
    return _mail("order_confirmation", subject, lang, settings, order=order,
                 status_url=status_url, pickup_store_name=pickup_store_name,
                 address=address, country=country,
                 pickup=pickup_code_for(order, settings.resolved_secret_key()))


def receipt(order: OrderOut, *, settings: Settings, store_name: str, store_address: str = "",
            customer_name: str = "") -> Mail:
    """A till receipt by e-mail, in the shop's default language: everything the
    printed receipt has (seller, business ID, date, number, items, paid, VAT per rate)."""
    lang = mail_language(settings.default_language, settings)
    subject = gettext(lang, N_("Receipt %(number)s – %(shop)s"),
                      number=order.receipt_no or order.number, shop=settings.business_name)
    return _mail("receipt", subject, lang, settings, order=order, store_name=store_name,
                 store_address=store_address, customer_name=customer_name)


def gift_cards(cards: list[SoldCard], *, order_number: str, lang: str,
               settings: Settings) -> Mail:
    """Digital gift cards bought in the webshop: each card's code, QR and expiry."""
    lang = mail_language(lang, settings)
    subject = gettext(lang, N_("Your gift card – %(shop)s"), shop=settings.business_name)
    return _mail("gift_cards", subject, lang, settings, cards=cards,
                 order_number=order_number)


def password_reset(*, url: str, lang: str, settings: Settings, first_name: str = "") -> Mail:
    lang = mail_language(lang, settings)
    subject = gettext(lang, N_("Reset your password – %(shop)s"), shop=settings.business_name)
    return _mail("password_reset", subject, lang, settings, url=url, first_name=first_name,
                 hours=RESET_LINK_HOURS)


def verify_email(*, url: str, lang: str, settings: Settings, first_name: str = "") -> Mail:
    lang = mail_language(lang, settings)
    subject = gettext(lang, N_("Confirm your e-mail address – %(shop)s"),
                      shop=settings.business_name)
    return _mail("verify_email", subject, lang, settings, url=url, first_name=first_name,
                 hours=VERIFY_LINK_HOURS)


def _local_date(at: datetime, lang: str, settings: Settings) -> str:
    return i18n.local_date(at, lang, settings.timezone)


def _order_update(kind: str, heading: str, paragraphs: list[str], order: OrderOut, *,
                  status_url: str, lang: str, settings: Settings, pickup: bool = False,
                  tracking: bool = False, refund_cents: int = 0) -> Mail:
    subject = gettext(lang, N_("%(what)s: order %(number)s – %(shop)s"), what=heading,
                      number=order.number, shop=settings.business_name)
    return _mail("order_update", subject, lang, settings, kind=kind, heading=heading,
                 paragraphs=paragraphs, order=order, status_url=status_url,
                 pickup=pickup_code_for(order, settings.resolved_secret_key()) if pickup
                 else None, tracking=tracking, refund_cents=refund_cents)


def pickup_ready(order: OrderOut, *, status_url: str, settings: Settings, store_name: str,
                 store_address: str, hold_until: datetime) -> Mail:
    """Click & collect: the order waits at the store; the pickup code and QR."""
    lang = mail_language(order.language, settings)
    return _order_update("ready", gettext(lang, N_("Ready for pickup")), [
        gettext(lang, N_("Your order is ready for pickup at %(store)s, %(address)s."),
                store=store_name, address=store_address or ""),
        gettext(lang, N_("We keep it for you until %(date)s."),
                date=_local_date(hold_until, lang, settings)),
    ], order, status_url=status_url, lang=lang, settings=settings, pickup=True)


def pickup_reminder(order: OrderOut, *, status_url: str, settings: Settings,
                    store_name: str, hold_until: datetime) -> Mail:
    """Click & collect: the hold ends soon."""
    lang = mail_language(order.language, settings)
    return _order_update("reminder", gettext(lang, N_("Your order is waiting for you")), [
        gettext(lang, N_("Your order is still waiting for you at %(store)s. Collect it by "
                         "%(date)s: after that it is cancelled and the money is refunded."),
                store=store_name, date=_local_date(hold_until, lang, settings)),
    ], order, status_url=status_url, lang=lang, settings=settings, pickup=True)


def order_shipped(order: OrderOut, *, status_url: str, settings: Settings) -> Mail:
    """Home delivery: sent, with the carrier and tracking number."""
    lang = mail_language(order.language, settings)
    return _order_update("shipped", gettext(lang, N_("Your order is on its way")), [
        gettext(lang, N_("We have sent your order. Follow the parcel with the tracking "
                         "number on the carrier's site.")),
    ], order, status_url=status_url, lang=lang, settings=settings, tracking=True)


def order_cancelled(order: OrderOut, *, status_url: str, settings: Settings, reason: str,
                    refund_cents: int) -> Mail:
    """A paid order cancelled: uncollected pickup or cancelled by the shop."""
    lang = mail_language(order.language, settings)
    why = (N_("Your order was not collected in time, so we have cancelled it and put the "
              "goods back on sale.") if reason == "not_collected"
           else N_("We have cancelled your order."))
    paragraphs = [gettext(lang, why)]
    if refund_cents:
        paragraphs.append(gettext(lang, N_("The money you paid is refunded to the way you "
                                           "paid; it may take a few banking days.")))
    return _order_update("cancelled", gettext(lang, N_("Order cancelled")), paragraphs,
                         order, status_url=status_url, lang=lang, settings=settings,
                         refund_cents=refund_cents)


def credit_receipt(receipt: CreditReceipt, *, settings: Settings, lang: str = "") -> Mail:
    """A credit receipt (hyvityskuitti) by e-mail: what the printed one has (seller,
    business ID, place, date, number, the goods taken back and the amounts as
    negatives, VAT per rate) and how the money went back."""
    lang = mail_language(lang or settings.default_language, settings)
    subject = gettext(lang, N_("Credit receipt %(number)s – %(shop)s"),
                      number=receipt.receipt_no, shop=settings.business_name)
    return _mail("credit_receipt", subject, lang, settings, receipt=receipt)
