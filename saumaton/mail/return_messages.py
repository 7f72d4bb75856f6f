"""The mails of returns: the credit receipt (hyvityskuitti) and a postal return's code
and instructions, in the shopper's language (fi/en)."""

from __future__ import annotations

from saumaton.config import Settings
from saumaton.mail.messages import Mail
from saumaton.mail.render import gettext, mail_language, render_mail
from saumaton.returns.schemas import CreditReceipt, ReturnOut
from saumaton.web.i18n import N_

REFUND_METHODS = {
    "paytrail": N_("Refunded to the online payment (Paytrail)"),
    "card": N_("Refunded to the card"),
    "cash": N_("Refunded in cash"),
    "store_credit": N_("Store credit"),
    "gift_card": N_("Back onto the gift card"),
    "bank_transfer": N_("Bank transfer (paid by finance)"),
}


def credit_receipt(receipt: CreditReceipt, *, lang: str, settings: Settings) -> Mail:
    """Everything the printed credit receipt has: seller, business ID, date, number,
    the goods taken back and the amounts as negatives, VAT per rate, the refunds."""
    lang = mail_language(lang, settings)
    subject = gettext(lang, N_("Credit receipt %(number)s – %(shop)s"),
                      number=receipt.receipt_no, shop=settings.business_name)
    text, html = render_mail("credit_receipt", lang, settings, {
        "subject": subject, "receipt": receipt, "methods": REFUND_METHODS})
    return Mail(subject=subject, text=text, html=html)


def return_started(ret: ReturnOut, *, lang: str, settings: Settings, address: str,
                   page_url: str) -> Mail:
    """A postal return was started: its code, what to send and where."""
    lang = mail_language(lang, settings)
    subject = gettext(lang, N_("Your return %(code)s – %(shop)s"),
                      code=ret.code, shop=settings.business_name)
    text, html = render_mail("return_started", lang, settings, {
        "subject": subject, "ret": ret, "address": address, "page_url": page_url})
    return Mail(subject=subject, text=text, html=html)
