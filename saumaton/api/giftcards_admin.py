"""/api/v1 gift cards as the back office handles them: the cards listed (codes masked),
a card closed with a reason (its balance written off, audited), and what the shop owes
on cards (the liability the back office's gift card page shows). Issuing and looking
up a card by its code are in `api.giftcards`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from saumaton.api.fields import Reason200, StrictInput, cursor_ints
from saumaton.api.pagination import CursorQuery, LimitQuery, Page, page_of
from saumaton.core.actor import Actor
from saumaton.core.types import MAX_ID, NoNul
from saumaton.giftcards import ledger
from saumaton.giftcards import services as giftcards
from saumaton.giftcards.services import GiftCardOut, GiftCardSummary
from saumaton.web.auth import db_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["gift cards"])
Reads = Annotated[Actor, api_requires("giftcards.read")]


@router.get("/gift-cards", response_model=Page[GiftCardSummary],
            summary="Gift cards and store credit, newest first (codes masked)")
async def list_gift_cards(
    request: Request, actor: Reads, cursor: CursorQuery = None, limit: LimitQuery = 50,
    kind: Annotated[Literal["gift_card", "store_credit"] | None, Query()] = None,
    status: Annotated[Literal["active", "expired", "void"] | None, Query()] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    order_id: Annotated[int | None, Query(ge=1, le=MAX_ID,
                                          description="the order that sold the card")]
    = None,
) -> Page[GiftCardSummary]:
    before = cursor_ints(cursor, "id")
    async with db_of(request).reader() as s:
        rows = await giftcards.list_cards(s, actor, kind=kind, status=status,
                                          customer_id=customer_id, order_id=order_id,
                                          before_id=before[0] if before else None,
                                          limit=limit + 1)
    return page_of(rows, limit, lambda c: {"id": c.id})


class VoidIn(StrictInput):
    reason: Reason200 = Field(description="why the card is closed (lost, stolen, issued "
                                          "by mistake); kept in the audit log")


@router.post("/gift-cards/{code}/void", response_model=GiftCardOut,
             summary="Close a card: its balance is written off (giftcards.issue)",
             responses={403: {"description": "forbidden: giftcards.issue at every location"},
                        404: {"description": "gift_card_not_found"},
                        409: {"description": "gift_card_void: closed already"},
                        422: {"description": "invalid_gift_card_code, reason_required"}})
async def void_gift_card(
    request: Request, body: VoidIn,
    code: Annotated[str, Path(max_length=40), NoNul],
    actor: Annotated[Actor, api_requires("giftcards.issue", everywhere=True)],
) -> GiftCardOut:
    async with db_of(request).uow() as uow:
        out = await giftcards.void_card(uow, actor, code, body.reason)
        await uow.commit()
    return out


class LiabilityOut(BaseModel):
    gift_card_cents: int = Field(description="unspent balance of gift cards")
    store_credit_cents: int = Field(description="unspent store credit")
    total_cents: int


@router.get("/gift-card-liability", response_model=LiabilityOut,
            summary="What the shop owes on gift cards and store credit not yet spent")
async def gift_card_liability(request: Request, actor: Reads) -> LiabilityOut:
    async with db_of(request).reader() as s:
        cards = await ledger.outstanding_cents(s, ledger.GIFT_CARD)
        credit = await ledger.outstanding_cents(s, ledger.STORE_CREDIT)
    return LiabilityOut(gift_card_cents=cards, store_credit_cents=credit,
                        total_cents=cards + credit)
