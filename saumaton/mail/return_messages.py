"""The mail of a postal return started online: its code and instructions, in the
shopper's language (fi/en). (The credit receipt is `mail.messages.credit_receipt`.)"""

from __future__ import annotations

from saumaton.config import Settings
from saumaton.i18n import N_
from saumaton.mail.messages import Mail
from saumaton.mail.render import gettext, mail_language, render_mail
from saumaton.returns.schemas import ReturnOut


def return_started(ret: ReturnOut, *, lang: str, settings: Settings, address: str,
                   page_url: str) -> Mail:
    """A postal return was started: its code, what to send and where."""
    lang = mail_language(lang, settings)
    subject = gettext(lang, N_("Your return %(code)s – %(shop)s"),
                      code=ret.code, shop=settings.business_name)
    text, html = render_mail("return_started", lang, settings, {
        "subject": subject, "ret": ret, "address": address, "page_url": page_url})
    return Mail(subject=subject, text=text, html=html)
