"""The chat by e-mail: when an agent's answer is also mailed to the visitor, the mail
itself, and what the desk shows about it.

A visitor who left an offline message was promised an answer by e-mail, and their
widget never shows that conversation again; a visitor who has not written for
`VISITOR_AWAY` has most likely left the page. In both cases, when the visitor gave an
e-mail address, the agent's answer is queued as a mail to that address in the same
transaction as the message (kind `service_reply`, reference `chat_message:<id>`), in
the conversation's language. Its Reply-To is the service address when one is
configured (SAUMATON_SERVICE_EMAIL), so the visitor's answer reaches the agents.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parseaddr

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.config import Settings
from saumaton.i18n import N_
from saumaton.mail.messages import Mail
from saumaton.mail.models import OutgoingMail
from saumaton.mail.render import gettext, mail_language, render_mail

KIND = "service_reply"
# Silence after which a live chat's visitor counts as gone: answers go by e-mail too.
VISITOR_AWAY = timedelta(minutes=10)


def reference(message_id: int) -> str:
    return f"chat_message:{message_id}"


def service_address(settings: Settings) -> str:
    """Where the shop reads service mail: SAUMATON_SERVICE_EMAIL, else the address of
    SAUMATON_MAIL_FROM."""
    return settings.service_email or parseaddr(settings.mail_from)[1] or settings.mail_from


def answer_by_email(*, email: str, offline_message: bool, last_visitor_at: datetime | None,
                    now: datetime) -> bool:
    """Whether an agent's answer is mailed as well as shown in the chat."""
    if not email:
        return False
    return offline_message or last_visitor_at is None or now - last_visitor_at > VISITOR_AWAY


def reply_mail(*, settings: Settings, language: str, name: str, answer: str, agent: str,
               question: str) -> Mail:
    lang = mail_language(language, settings)
    subject = gettext(lang, N_("Answer from customer service – %(shop)s"),
                      shop=settings.business_name)
    first_name = name.split()[0] if name.split() else ""
    text, html = render_mail(KIND, lang, settings, {
        "subject": subject, "first_name": first_name, "answer": answer, "agent": agent,
        "question": question, "can_reply": bool(settings.service_email)})
    return Mail(subject=subject, text=text, html=html)


async def mail_status(session: AsyncSession, message_ids: list[int]) -> dict[int, str]:
    """The e-mailed copy of each message that has one: queued | sent | failed."""
    if not message_ids:
        return {}
    refs = {reference(i): i for i in message_ids}
    rows = (await session.execute(
        select(OutgoingMail.reference, OutgoingMail.status)
        .where(OutgoingMail.reference.in_(list(refs)), OutgoingMail.kind == KIND))).all()
    return {refs[str(ref)]: str(status) for ref, status in rows}
