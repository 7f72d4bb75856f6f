"""Gift cards in the back office: find a card by its code (balance, expiry, every entry),
issue one (managers: a goodwill gesture, a prize) and close a lost or stolen one with a
reason; the outstanding balance of all cards is the shop's liability for finance.

Thin: the rules are in `giftcards.services` and `giftcards.ledger`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response

from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError
from saumaton.giftcards import ledger
from saumaton.giftcards import services as giftcards
from saumaton.giftcards.services import GiftCardIn, GiftCardOut
from saumaton.web.auth import db_of
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_, parse_money
from saumaton.web.pages import (
    checked_form,
    error_message,
    gettext,
    page_router,
    render,
    require_staff,
    settings_of,
)

router = page_router("/backoffice")
BASE = "/backoffice/gift-cards"
MESSAGES = {
    "invalid_gift_card_code": N_("A gift card code has 16 digits; check the code."),
    "gift_card_not_found": N_("No gift card has this code."),
    "gift_card_void": N_("This card has been closed already."),
    "reason_required": N_("Say why the card is closed."),
    "reason_too_long": N_("Use at most 200 characters."),
    "invalid_amount": N_("Give an amount between 0.01 and 10 000 €."),
}


async def _render(request: Request, *, card: GiftCardOut | None = None, q: str = "",
                  errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
                  notice: str = "", status: int = 200) -> Response:
    actor = await require_staff(request)
    async with db_of(request).reader() as s:
        outstanding = {kind: await ledger.outstanding_cents(s, kind)
                       for kind in (ledger.GIFT_CARD, ledger.STORE_CREDIT)}
    return render(request, "backoffice/gift_cards.html", {
        "title": gettext(request, N_("Gift cards")), "card": card, "q": q,
        "errors": errors or {}, "values": values or {}, "notice": notice,
        "outstanding": outstanding, "base": BASE,
        "may_issue": actor.can("giftcards.issue", everywhere=True)}, status=status)


def _message(request: Request, exc: DomainError) -> str:
    return error_message(request, exc, MESSAGES)


@router.get("/gift-cards")
async def gift_cards(request: Request,
        _allowed: Annotated[Actor, requires("giftcards.read")],
        code: Annotated[str, Query(max_length=40)] = "",
                     done: Annotated[str, Query(max_length=16)] = "") -> Response:
    actor = await require_staff(request)
    actor.require("giftcards.read")
    typed = code.strip()
    if not typed:
        return await _render(request)
    try:
        async with db_of(request).reader() as s:
            card = await giftcards.lookup(s, actor, typed, entries=100)
    except DomainError as exc:
        return await _render(request, q=typed, errors={"code": _message(request, exc)},
                             status=exc.status)
    notice = {"issued": gettext(request, N_("The card is issued: give the code to its "
                                            "holder.")),
              "void": gettext(request, N_("The card is closed."))}.get(done, "")
    return await _render(request, card=card, q=typed, notice=notice)


@router.post("/gift-cards")
async def issue(request: Request,
        _allowed: Annotated[Actor, requires("giftcards.issue", everywhere=True)]) -> Response:
    actor = await require_staff(request)
    form = await checked_form(request)
    raw_amount, email = str(form.get("amount", "")), str(form.get("email", "")).strip()
    values = {"amount": raw_amount, "email": email}
    errors: dict[str, str] = {}
    try:
        cents = parse_money(raw_amount)
    except ValueError:
        cents = None
    if not cents or cents <= 0 or cents > ledger.MAX_CARD_CENTS:
        errors["amount"] = gettext(request, MESSAGES["invalid_amount"])
    if len(email) > 320:
        errors["email"] = gettext(request, N_("Use at most 320 characters."))
    if errors or cents is None:
        return await _render(request, errors=errors, values=values, status=422)
    key = str(form.get("key", "")) or uuid.uuid4().hex  # a double submit issues one card
    try:
        async with db_of(request).uow() as uow:
            card, _ = await giftcards.issue_card(
                uow, actor, GiftCardIn(amount_cents=cents, email=email), f"bo:{key[:64]}",
                settings=settings_of(request))
            await uow.commit()
    except DomainError as exc:
        return await _render(request, errors={"amount": _message(request, exc)},
                             values=values, status=exc.status)
    return RedirectResponse(f"{BASE}?code={card.code}&done=issued", status_code=303)


@router.post("/gift-cards/void")
async def void(request: Request,
        _allowed: Annotated[Actor, requires("giftcards.issue", everywhere=True)]) -> Response:
    actor = await require_staff(request)
    form = await checked_form(request)
    code, reason = str(form.get("code", ""))[:40], str(form.get("reason", ""))
    try:
        async with db_of(request).uow() as uow:
            card = await giftcards.void_card(uow, actor, code, reason)
            await uow.commit()
    except DomainError as exc:
        async with db_of(request).reader() as s:
            shown = await giftcards.lookup(s, actor, code, entries=100) \
                if exc.code != "invalid_gift_card_code" else None
        field = "reason" if exc.code.startswith("reason") else "void"
        return await _render(request, card=shown, q=code,
                             errors={field: _message(request, exc)},
                             values={"reason": reason}, status=exc.status)
    return RedirectResponse(f"{BASE}?code={card.code}&done=void", status_code=303)
