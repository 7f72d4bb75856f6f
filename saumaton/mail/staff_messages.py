"""The mails to staff: an invitation (choose your password) and a password reset link,
in the language of the page that sent them (fi/en)."""

from __future__ import annotations

from saumaton.config import Settings
from saumaton.i18n import N_
from saumaton.mail.messages import Mail
from saumaton.mail.render import gettext, mail_language, render_mail


def staff_link_mail(purpose: str, *, url: str, name: str, lang: str,
                    settings: Settings) -> Mail:
    """purpose: "invite" (valid 7 days) or "reset" (valid 24 hours)."""
    lang = mail_language(lang, settings)
    if purpose == "invite":
        subject = gettext(lang, N_("You are invited to %(shop)s's staff"),
                          shop=settings.business_name)
    else:
        subject = gettext(lang, N_("Choose a new staff password – %(shop)s"),
                          shop=settings.business_name)
    text, html = render_mail(f"staff_{purpose}", lang, settings, {
        "subject": subject, "url": url, "name": name})
    return Mail(subject=subject, text=text, html=html)
