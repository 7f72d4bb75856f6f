"""/api/v1/webhooks: subscriptions to the outbox's domain events (docs/webhooks.md),
their delivery log and "send again". Owners only (permission webhooks.write)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from saumaton.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, page_of
from saumaton.core.actor import Actor
from saumaton.core.errors import ValidationFailed
from saumaton.core.types import MAX_ID
from saumaton.db.retry import retried
from saumaton.outbound_webhooks import services as webhooks
from saumaton.outbound_webhooks.services import (
    DeliveryOut,
    DeliveryQuery,
    SecretOut,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionOut,
)
from saumaton.outbound_webhooks.topics import TEST_TOPIC
from saumaton.web.auth import db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Owner = Annotated[Actor, api_requires(webhooks.PERMISSION)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "webhook_not_found"}}


def _cursor_id(cursor: str | None) -> int | None:
    key = decode_cursor(cursor, "id")
    if key is None:
        return None
    value = key["id"]
    if type(value) is not int or value < 1:
        raise ValidationFailed("this cursor was not made by this list; start again "
                               "without one", code="invalid_cursor", field="cursor")
    return value


@router.get("/webhooks", response_model=Page[SubscriptionOut],
            summary="Webhook subscriptions, oldest first")
async def list_webhooks(request: Request, actor: Owner, cursor: CursorQuery = None,
                        limit: LimitQuery = 50) -> Page[SubscriptionOut]:
    after = _cursor_id(cursor) or 0
    async with db_of(request).reader() as s:
        rows = await webhooks.list_subscriptions(s, actor, after_id=after, limit=limit + 1)
    return page_of(rows, limit, lambda r: {"id": r.id})


@router.post("/webhooks", response_model=SubscriptionCreated, status_code=201,
             summary="Subscribe an address to topics; the answer holds the signing secret "
                     "(shown only now)",
             responses={409: {"description": "too_many_webhooks"}})
async def create_webhook(request: Request, response: Response, body: SubscriptionIn,
                         actor: Owner) -> SubscriptionCreated:
    async with db_of(request).uow() as uow:
        out = await webhooks.create_subscription(uow, actor, body, settings_of(request))
        await uow.commit()
    response.headers["Location"] = f"/api/v1/webhooks/{out.id}"
    return out


@router.get("/webhooks/{webhook_id}", response_model=SubscriptionOut, responses=NOT_FOUND,
            summary="One subscription (without its secret)")
async def get_webhook(request: Request, webhook_id: IdPath, actor: Owner) -> SubscriptionOut:
    async with db_of(request).reader() as s:
        return await webhooks.get_subscription(s, actor, webhook_id)


@router.put("/webhooks/{webhook_id}", response_model=SubscriptionOut, responses=NOT_FOUND,
            summary="Change the address, topics, description or enabled state")
async def update_webhook(request: Request, webhook_id: IdPath, body: SubscriptionIn,
                         actor: Owner) -> SubscriptionOut:
    async with db_of(request).uow() as uow:
        out = await webhooks.update_subscription(uow, actor, webhook_id, body,
                                                 settings_of(request))
        await uow.commit()
    return out


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=NOT_FOUND,
               summary="Delete a subscription and its delivery log")
async def delete_webhook(request: Request, webhook_id: IdPath, actor: Owner) -> Response:
    async def delete() -> None:
        async with db_of(request).uow() as uow:
            await webhooks.delete_subscription(uow, actor, webhook_id)
            await uow.commit()
    # the delivery worker may hold the subscription's deliveries: a deadlock victim is
    # rolled back whole, so deleting again is safe
    await retried(delete)
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/secret", response_model=SecretOut, responses=NOT_FOUND,
             summary="Replace the signing secret (the old one stops at once)")
async def rotate_webhook_secret(request: Request, webhook_id: IdPath,
                                actor: Owner) -> SecretOut:
    async with db_of(request).uow() as uow:
        out = await webhooks.rotate_secret(uow, actor, webhook_id)
        await uow.commit()
    return out


class QueuedTestEvent(BaseModel):
    subscription_id: int
    topic: str = Field(description='always "webhook.test"')


@router.post("/webhooks/{webhook_id}/test", status_code=202, response_model=QueuedTestEvent,
             responses={**NOT_FOUND, 409: {"description": "webhook_disabled: turn it on first"}},
             summary="Send a webhook.test event to this subscription")
async def test_webhook(request: Request, webhook_id: IdPath, actor: Owner) -> QueuedTestEvent:
    async with db_of(request).uow() as uow:
        await webhooks.send_test_event(uow, actor, webhook_id)
        await uow.commit()
    return QueuedTestEvent(subscription_id=webhook_id, topic=TEST_TOPIC)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=Page[DeliveryOut],
            responses=NOT_FOUND, summary="The delivery log, newest first")
async def list_webhook_deliveries(
    request: Request, webhook_id: IdPath, actor: Owner, cursor: CursorQuery = None,
    limit: LimitQuery = 50,
    status: Annotated[Literal["pending", "delivering", "delivered", "failed"] | None,
                      Query(description="only deliveries in this state")] = None,
) -> Page[DeliveryOut]:
    before = _cursor_id(cursor)
    async with db_of(request).reader() as s:
        rows = await webhooks.list_deliveries(
            s, actor, DeliveryQuery(webhook_id, status or "", before), limit + 1)
    return page_of(rows, limit, lambda r: {"id": r.id})


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
             response_model=DeliveryOut, status_code=202,
             responses={404: {"description": "webhook_delivery_not_found"},
                        409: {"description": "webhook_delivering: being sent right now"}},
             summary="Send a delivery again, with the same webhook-id")
async def redeliver_webhook(request: Request, webhook_id: IdPath, delivery_id: IdPath,
                            actor: Owner) -> DeliveryOut:
    async with db_of(request).uow() as uow:
        out = await webhooks.redeliver(uow, actor, delivery_id, webhook_id)
        await uow.commit()
    return out
