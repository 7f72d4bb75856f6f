"""/api/v1 gift cards: managers issue cards; staff look up a card's balance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response

from saumaton.core.actor import Actor
from saumaton.giftcards import services as giftcards
from saumaton.giftcards.services import GiftCardIn, GiftCardOut
from saumaton.web.auth import db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["gift cards"])


@router.post(
    "/gift-cards", response_model=GiftCardOut, status_code=201,
    summary="Issue a gift card (permission giftcards.issue: managers)",
    responses={200: {"description": "replay: this Idempotency-Key was seen; same card"},
               409: {"description": "idempotency_key_reused"}},
)
async def issue_gift_card(
    request: Request, response: Response, body: GiftCardIn,
    actor: Annotated[Actor, api_requires("giftcards.issue", everywhere=True)],
    idempotency_key: Annotated[str | None, Header(
        min_length=8, max_length=180,
        description="any unique string (a UUID); a retry with the same key returns the "
                    "same card and never issues a second one")] = None,
) -> GiftCardOut:
    async with db_of(request).uow() as uow:
        out, replayed = await giftcards.issue_card(
            uow, actor, body, f"api:{idempotency_key}" if idempotency_key else None,
            settings=settings_of(request))
        await uow.commit()
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/gift-cards/{out.code}"
    return out


@router.get("/gift-cards/{code}", response_model=GiftCardOut,
            summary="A card's balance, expiry, status and last entries (giftcards.read)")
async def get_gift_card(
    request: Request, code: Annotated[str, Path(max_length=40)],
    actor: Annotated[Actor, api_requires("giftcards.read")],
) -> GiftCardOut:
    async with db_of(request).reader() as s:
        return await giftcards.lookup(s, actor, code)
