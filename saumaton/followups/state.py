"""A follow-up's state, true to what happened to its mail.

Handing the mail to the outbox (`mail.marketing.queue_marketing_mail`) is not sending
it: the mail sender may still suppress it (the consent was withdrawn meanwhile) or fail
to deliver it. So a follow-up whose mail is queued is `queued`, linked to the mail by
`mail_id`, and takes the outbox's outcome — `sent`, `suppressed` or `failed` — once the
mail sender has recorded it: stored by the follow-up job's next pass
(`followups.sender.settle_queued`), and shown at once by every page that reads
`shown_status()` (the outbox row is the record of delivery until then).
"""

from __future__ import annotations

from sqlalchemy import and_, case
from sqlalchemy.sql.elements import ColumnElement

from saumaton.followups.models import Followup
from saumaton.mail.models import OutgoingMail

PENDING = "pending"
QUEUED = "queued"
# The outbox's final states (mail.models.OutgoingMail.status), each the follow-up's too.
MAIL_OUTCOMES = ("sent", "suppressed", "failed")
SKIPPED = ("skipped_no_consent", "skipped_no_address")
CANCELLED = "cancelled"
STATUSES = (PENDING, QUEUED, *MAIL_OUTCOMES, *SKIPPED, CANCELLED)


def shown_status() -> ColumnElement[str]:
    """SQL: the follow-up's state as it is now — a queued one's mail outcome once the
    sender has recorded it. Needs `OutgoingMail` outer-joined on `Followup.mail_id`."""
    return case((and_(Followup.status == QUEUED, OutgoingMail.status.in_(MAIL_OUTCOMES)),
                 OutgoingMail.status), else_=Followup.status)


def mail_join() -> ColumnElement[bool]:
    """The ON clause of that outer join."""
    return OutgoingMail.id == Followup.mail_id
