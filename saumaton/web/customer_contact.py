"""The contact forms of every channel's customer card (templates customers/_contact.html
and _consents.html): one form post to `saumaton.customers.contact`, answered as what the
card shows next to the form. The till, the service desk and the back office each route
`…/contact/{action}` here and render their own card with the result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from fastapi import Request
from starlette.datastructures import FormData

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, ValidationFailed
from saumaton.core.types import MAX_ID
from saumaton.customers import contact
from saumaton.customers.consents import CONSENT_KINDS
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import error_message, gettext

# name | add an e-mail | add a phone | remove one | issue a card | the consents
Action = Literal["name", "email", "phone", "remove", "card", "consents"]
# The `saved` value each action answers with; the card's partials word it.
SAVED: Mapping[str, str] = {
    "name": "contact_name", "email": "contact_email", "phone": "contact_phone",
    "remove": "contact_removed", "card": "contact_card", "consents": "contact_consents"}
# Where the form shows an error: the field, or the form's own line.
ERROR_FIELD: Mapping[str, str] = {
    "email": "contact_email", "phone": "contact_phone", "remove": "contact_identity",
    "card": "contact_card", "consents": "contact_consents"}
MESSAGES: Mapping[str, str] = {
    "required": N_("Fill in this field."),
    "too_long": N_("At most %(max)s characters."),
    "name_required": N_("Give a first or a last name."),
    "invalid_phone": N_("Check the phone number."),
    "invalid_email": N_("Check the e-mail address."),
    "too_many_identities": N_("A customer can have at most %(max)s of these."),
    "identity_not_found": N_("The customer no longer has this. Reload the card."),
    "account_email": N_(
        "This is the customer's webshop login; they change it themselves in their account."),
    "card_kept": N_("A loyalty card is kept: the points are on it."),
    "last_identity": N_(
        "A customer without a name keeps at least one phone number, e-mail or card."),
    "card_exists": N_("The customer has a loyalty card already."),
    "card_not_issued": N_("No card number could be issued. Try again."),
    "customer_erased": N_("This customer's data has been erased; it cannot be changed."),
}
TAKEN: Mapping[str, str] = {
    "phone": N_("Another customer has this number already."),
    "email": N_("Another customer has this e-mail address already."),
}


@dataclass
class ContactAnswer:
    """`saved` after a change; else `status` with errors next to the fields and what
    was typed (`values`)."""

    saved: str = ""
    status: int = 200
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def _text(form: FormData, name: str, max_len: int = 400) -> str:
    value = form.get(name)
    return value[:max_len] if isinstance(value, str) else ""


def _message(request: Request, exc: DomainError) -> str:
    if exc.code == "identity_taken":
        return gettext(request, TAKEN.get(exc.field or "", TAKEN["phone"]))
    return error_message(request, exc, MESSAGES)


def _identity_id(form: FormData) -> int:
    raw = _text(form, "identity_id", 20)
    if not (raw.isdigit() and 0 < int(raw) <= MAX_ID):
        raise ValidationFailed("choose what to remove", code="identity_not_found",
                               field="identity")
    return int(raw)


async def apply(request: Request, actor: Actor, customer_id: int, action: Action,
                form: FormData, channel: str) -> ContactAnswer:
    """Do what the form asks. A 401/403 and an unknown customer are raised for the
    channel to answer as it does; any other refusal changes nothing and is returned
    next to the field."""
    values: dict[str, str] = {}
    try:
        async with db_of(request).uow() as uow:
            if action == "name":
                values = {"contact_first_name": _text(form, "first_name"),
                          "contact_last_name": _text(form, "last_name")}
                await contact.update_name(uow, actor, customer_id,
                                          values["contact_first_name"],
                                          values["contact_last_name"])
            elif action in ("email", "phone"):
                values = {f"contact_{action}": _text(form, "value")}
                await contact.add_identity(uow, actor, customer_id, action,
                                           values[f"contact_{action}"])
            elif action == "remove":
                await contact.remove_identity(uow, actor, customer_id, _identity_id(form))
            elif action == "card":
                await contact.issue_card(uow, actor, customer_id)
            else:
                granted = {k: form.get(k) == "yes" for k in CONSENT_KINDS}
                values = {f"consent_{k}": "yes" if v else "no" for k, v in granted.items()}
                await contact.set_consents(uow, actor, customer_id, granted, channel)
            await uow.commit()
    except DomainError as exc:
        if exc.status in (401, 403) or exc.code == "customer_not_found":
            raise
        where = ERROR_FIELD.get(action, "contact_first_name")
        if action == "name" and exc.field == "last_name":
            where = "contact_last_name"
        if exc.code == "identity_taken" and actor.can("customers.merge", everywhere=True):
            values["duplicates_q"] = values.get(where, "")
        return ContactAnswer(status=exc.status, errors={where: _message(request, exc)},
                             values=values)
    return ContactAnswer(saved=SAVED[action])
