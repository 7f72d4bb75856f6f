"""Managing webhook subscriptions and reading their delivery log (docs/webhooks.md).

Every change needs `webhooks.write` (owners) and is audited in the caller's
transaction; the caller commits. The worker (saumaton.outbound_webhooks.worker) does the sending.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.audit.services import record
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.core.types import Input
from saumaton.db.uow import UnitOfWork
from saumaton.outbound_webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from saumaton.outbound_webhooks.topics import TEST_TOPIC, valid_pattern

PERMISSION = "webhooks.write"
MAX_SUBSCRIPTIONS = 50
Pattern = Annotated[str, Field(min_length=1, max_length=64)]


def new_secret() -> str:
    """A Standard Webhooks signing secret: "whsec_" + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_id_for(event_id: int, subscription_id: int) -> str:
    """The webhook-id of one event's delivery to one subscription: fixed at fan-out,
    so every retry and every "send again" carries the same id."""
    return f"msg_{event_id}_{subscription_id}"


class SubscriptionIn(Input):
    # Strict JSON types: "enabled": 1 or "true" is refused, not read as True.
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(min_length=1, max_length=2000,
                     description="http(s) address the events are POSTed to "
                                 "(https in production)")
    topics: list[Pattern] = Field(min_length=1, max_length=100, description=(
        'topics ("order.paid"), areas ("order.*") or "*" for every topic'))
    description: str = Field("", max_length=200)
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        check_url_shape(value)
        return value.strip()

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if not valid_pattern(t)]
        if unknown:
            raise ValueError(f"unknown topics: {', '.join(unknown[:5])}")
        return sorted(set(value))


def check_url_shape(value: str) -> None:
    """Raise ValueError unless `value` is an absolute http(s) URL with a host."""
    text = value.strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError("give an http:// or https:// address without spaces")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("give an http:// or https:// address")
    if parts.username or parts.password:
        raise ValueError("put no user name or password in the address")
    try:
        parts.port  # noqa: B018  (raises on a port out of range)
    except ValueError as exc:
        raise ValueError("the port is not valid") from exc


def check_url(url: str, settings: Settings) -> None:
    """The environment's rule on top of the shape: production sends only over https
    (a signature proves who sent an event, not that nobody else read it)."""
    try:
        check_url_shape(url)
    except ValueError as exc:
        raise ValidationFailed(str(exc), code="invalid_webhook_url", field="url") from exc
    if settings.env == "production" and urlsplit(url).scheme != "https":
        raise ValidationFailed("in production a webhook address must use https",
                               code="webhook_url_not_https", field="url")


class SubscriptionOut(BaseModel):
    id: int
    url: str
    description: str
    topics: list[str]
    enabled: bool
    disabled_reason: str
    failing_since: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="shown only now: keep it where the receiver runs")


class SecretOut(BaseModel):
    id: int
    secret: str = Field(description="the new signing secret; the old one stops at once")


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    error: str
    response_ms: int


class DeliveryOut(BaseModel):
    id: int
    subscription_id: int
    event_id: int
    webhook_id: str
    topic: str
    resource: str
    status: str = Field(description="pending, delivering, delivered or failed (given up)")
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str
    last_response_ms: int | None
    created_at: datetime
    delivered_at: datetime | None


def _out(sub: WebhookSubscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id, url=sub.url, description=sub.description, topics=list(sub.topics),
        enabled=sub.enabled, disabled_reason=sub.disabled_reason,
        failing_since=sub.failing_since, created_by=sub.created_by,
        created_at=sub.created_at, updated_at=sub.updated_at)


def delivery_out(d: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id, subscription_id=d.subscription_id, event_id=d.event_id,
        webhook_id=d.webhook_id, topic=d.topic, resource=d.resource, status=d.status,
        attempts=d.attempts, next_attempt_at=d.next_attempt_at,
        last_status_code=d.last_status_code, last_error=d.last_error,
        last_response_ms=d.last_response_ms, created_at=d.created_at,
        delivered_at=d.delivered_at)


async def _locked(uow: UnitOfWork, subscription_id: int) -> WebhookSubscription:
    sub = await uow.session.get(WebhookSubscription, subscription_id, with_for_update=True)
    if sub is None:
        raise NotFound(f"no webhook subscription {subscription_id}",
                       code="webhook_not_found")
    return sub


# --- reading ----------------------------------------------------------------------------

async def list_subscriptions(session: AsyncSession, actor: Actor, *,
                             after_id: int = 0, limit: int = 200) -> list[SubscriptionOut]:
    actor.require(PERMISSION)
    rows = (await session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.id > after_id)
        .order_by(WebhookSubscription.id).limit(limit))).all()
    return [_out(r) for r in rows]


async def get_subscription(session: AsyncSession, actor: Actor,
                           subscription_id: int) -> SubscriptionOut:
    actor.require(PERMISSION)
    sub = await session.get(WebhookSubscription, subscription_id)
    if sub is None:
        raise NotFound(f"no webhook subscription {subscription_id}",
                       code="webhook_not_found")
    return _out(sub)


@dataclass(frozen=True)
class DeliveryQuery:
    subscription_id: int
    status: str = ""  # "" for every status
    before_id: int | None = None  # newest first: the page after this id


async def list_deliveries(session: AsyncSession, actor: Actor, q: DeliveryQuery,
                          limit: int = 50) -> list[DeliveryOut]:
    """Newest first, `limit` rows (the caller asks one more to see whether more follow)."""
    await get_subscription(session, actor, q.subscription_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == q.subscription_id)
    if q.status:
        stmt = stmt.where(WebhookDelivery.status == q.status)
    if q.before_id is not None:
        stmt = stmt.where(WebhookDelivery.id < q.before_id)
    rows = (await session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit))).all()
    return [delivery_out(r) for r in rows]


async def attempts_of(session: AsyncSession, actor: Actor,
                      delivery_ids: list[int]) -> dict[int, list[AttemptOut]]:
    """The attempts of these deliveries, newest first, by delivery id."""
    actor.require(PERMISSION)
    out: dict[int, list[AttemptOut]] = {i: [] for i in delivery_ids}
    if not delivery_ids:
        return out
    rows = (await session.scalars(
        select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.id.desc()))).all()
    for a in rows:
        out[a.delivery_id].append(AttemptOut(at=a.at, status_code=a.status_code,
                                             error=a.error, response_ms=a.response_ms))
    return out


async def delivery_counts(session: AsyncSession, subscription_id: int) -> dict[str, int]:
    rows = (await session.execute(
        select(WebhookDelivery.status, func.count())
        .where(WebhookDelivery.subscription_id == subscription_id)
        .group_by(WebhookDelivery.status))).all()
    return {str(s): int(n) for s, n in rows}


# --- writing ----------------------------------------------------------------------------

async def create_subscription(uow: UnitOfWork, actor: Actor, data: SubscriptionIn,
                              settings: Settings) -> SubscriptionCreated:
    actor.require(PERMISSION)
    check_url(data.url, settings)
    count = int(await uow.session.scalar(select(func.count()).select_from(
        WebhookSubscription)) or 0)
    if count >= MAX_SUBSCRIPTIONS:
        raise Conflict(f"at most {MAX_SUBSCRIPTIONS} webhook subscriptions",
                       code="too_many_webhooks")
    now = utcnow()
    sub = WebhookSubscription(
        url=data.url, description=data.description.strip(), topics=data.topics,
        secret=new_secret(), enabled=data.enabled, disabled_reason="", failing_since=None,
        created_by=actor.label[:200], created_at=now, updated_at=now)
    uow.session.add(sub)
    await uow.session.flush()
    await record(uow, actor, "webhook.create", "webhook", sub.id,
                 {"url": sub.url, "topics": sub.topics, "enabled": sub.enabled})
    subscriptions_changed(uow, sub.id)
    return SubscriptionCreated(**_out(sub).model_dump(), secret=sub.secret)


async def update_subscription(uow: UnitOfWork, actor: Actor, subscription_id: int,
                              data: SubscriptionIn, settings: Settings) -> SubscriptionOut:
    actor.require(PERMISSION)
    check_url(data.url, settings)
    sub = await _locked(uow, subscription_id)
    before = {"url": sub.url, "topics": list(sub.topics), "enabled": sub.enabled,
              "description": sub.description}
    sub.url, sub.topics, sub.description = data.url, data.topics, data.description.strip()
    _set_enabled(sub, data.enabled, "turned off by " + (actor.name or actor.label))
    sub.updated_at = utcnow()
    after = {"url": sub.url, "topics": list(sub.topics), "enabled": sub.enabled,
             "description": sub.description}
    changed = {k: {"from": before[k], "to": v} for k, v in after.items() if before[k] != v}
    if changed:
        await record(uow, actor, "webhook.update", "webhook", sub.id, changed)
        subscriptions_changed(uow, sub.id)
    return _out(sub)


def _set_enabled(sub: WebhookSubscription, enabled: bool, reason: str) -> None:
    if enabled and not sub.enabled:
        # Back on: the failure clock starts again; due deliveries go out on the next round.
        sub.failing_since = None
        sub.disabled_reason = ""
    elif not enabled and sub.enabled:
        sub.disabled_reason = reason[:300]
    sub.enabled = enabled


async def set_enabled(uow: UnitOfWork, actor: Actor, subscription_id: int, enabled: bool,
                      reason: str = "") -> SubscriptionOut:
    actor.require(PERMISSION)
    sub = await _locked(uow, subscription_id)
    if sub.enabled != enabled:
        _set_enabled(sub, enabled, reason or "turned off by " + (actor.name or actor.label))
        sub.updated_at = utcnow()
        await record(uow, actor, "webhook.enable" if enabled else "webhook.disable",
                     "webhook", sub.id, {"reason": sub.disabled_reason} if not enabled else {})
        subscriptions_changed(uow, sub.id)
    return _out(sub)


async def delete_subscription(uow: UnitOfWork, actor: Actor, subscription_id: int) -> None:
    actor.require(PERMISSION)
    sub = await _locked(uow, subscription_id)
    await record(uow, actor, "webhook.delete", "webhook", sub.id, {"url": sub.url})
    # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign keys on.
    ids = select(WebhookDelivery.id).where(WebhookDelivery.subscription_id == sub.id)
    await uow.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
    await uow.session.execute(delete(WebhookDelivery)
                              .where(WebhookDelivery.subscription_id == sub.id))
    await uow.session.delete(sub)
    subscriptions_changed(uow, subscription_id)


async def rotate_secret(uow: UnitOfWork, actor: Actor, subscription_id: int) -> SecretOut:
    actor.require(PERMISSION)
    sub = await _locked(uow, subscription_id)
    sub.secret = new_secret()
    sub.updated_at = utcnow()
    await record(uow, actor, "webhook.rotate_secret", "webhook", sub.id, {})
    return SecretOut(id=sub.id, secret=sub.secret)


async def redeliver(uow: UnitOfWork, actor: Actor, delivery_id: int,
                    subscription_id: int | None = None) -> DeliveryOut:
    """"Send again": the delivery is due now, with the same webhook-id, whatever its
    state (a delivered one too: the receiver asked for it again). Its retry period
    starts again."""
    actor.require(PERMISSION)
    d = await uow.session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if d is None or (subscription_id is not None and d.subscription_id != subscription_id):
        raise NotFound(f"no webhook delivery {delivery_id}", code="webhook_delivery_not_found")
    if d.status == "delivering":
        raise Conflict("this delivery is being sent right now", code="webhook_delivering")
    now = utcnow()
    d.status, d.next_attempt_at, d.created_at, d.delivered_at = "pending", now, now, None
    await record(uow, actor, "webhook.redeliver", "webhook", d.subscription_id,
                 {"delivery_id": d.id, "webhook_id": d.webhook_id})
    uow.emit(WAKE_TOPIC, {"subscription_id": d.subscription_id})
    return delivery_out(d)


# Not a domain event (nobody subscribes to it): it only wakes the workers at once.
WAKE_TOPIC = "webhook.wake"
# Not a domain event either: a subscription was added, changed or removed, so each
# process's worker looks again whether any is enabled (`worker.any_enabled`).
SUBSCRIPTIONS_TOPIC = "webhook.subscriptions"


def subscriptions_changed(uow: UnitOfWork, subscription_id: int) -> None:
    uow.emit(SUBSCRIPTIONS_TOPIC, {"subscription_id": subscription_id})


async def send_test_event(uow: UnitOfWork, actor: Actor, subscription_id: int) -> None:
    """A `webhook.test` event for one subscription: an outbox event that the fan-out
    gives to this subscription only, delivered like any other."""
    actor.require(PERMISSION)
    sub = await _locked(uow, subscription_id)
    if not sub.enabled:
        raise Conflict("this subscription is off: turn it on to send a test event",
                       code="webhook_disabled")
    uow.emit(TEST_TOPIC, {"subscription_id": sub.id, "message": "a test event from Saumaton"})
    await record(uow, actor, "webhook.test", "webhook", sub.id, {})


async def owner_addresses(session: AsyncSession) -> list[str]:
    from saumaton.staff.models import Staff, StaffRole

    rows = (await session.scalars(
        select(Staff.email).join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(StaffRole.role == "owner", Staff.active.is_(True)).distinct())).all()
    return sorted({str(r) for r in rows if r})

