"""Bounces and complaints from the mail provider (both databases): a hard bounce or a
complaint turns off the marketing consent of every customer with the address, a soft
bounce only counts (the third in 30 days turns it off), a repeated event id does
nothing, a bad batch answers 422 with every error and records nothing; the CLI reads
the same format."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from saumaton.audit.models import AuditEntry
from saumaton.cli import app as cli_app
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.customers.card import QuickCustomerIn, quick_create
from saumaton.customers.consents import consent_history, current_consents
from saumaton.customers.services import CustomerOut
from saumaton.customers.timeline import timeline
from saumaton.db.uow import Database
from saumaton.mail.models import MailEvent
from tests.support import Shop

CASHIER = Actor(label="staff:test cashier", name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))
URL = "/api/v1/mail/events"


async def customer(db: Database, email: str, *, consent: bool = True) -> CustomerOut:
    async with db.uow() as uow:
        out = await quick_create(uow, CASHIER, QuickCustomerIn(
            phone=f"040 {random.randrange(10**7):07d}", first_name="Paula",
            last_name="Palautus", email=email, marketing_email=consent))
        await uow.commit()
    return out


def new_email() -> str:
    return f"bounce.{uuid.uuid4().hex[:10]}@example.fi"


def event(kind: str, email: str, *, at: datetime | None = None, **more: Any) -> dict[str, Any]:
    when = at or datetime.now(UTC)
    return {"id": f"ev-{uuid.uuid4().hex}", "type": kind, "email": email,
            "at": when.isoformat(), **more}


async def consent(db: Database, customer_id: int) -> bool:
    async with db.reader() as s:
        return (await current_consents(s, customer_id))["marketing_email"]


async def events_for(db: Database, email: str) -> list[MailEvent]:
    async with db.reader() as s:
        return list((await s.scalars(select(MailEvent).where(MailEvent.email == email)
                                     .order_by(MailEvent.id))).all())


async def test_hard_bounce_and_complaint_turn_consent_off(
        db: Database, shop: Shop, client: httpx.AsyncClient) -> None:
    bounced, complained, bystander = new_email(), new_email(), new_email()
    first = await customer(db, bounced)
    also = await customer(db, complained)
    other = await customer(db, bystander)
    hard = event("hard_bounce", bounced.upper(), mail_id=12345)
    spam = event("complaint", complained, message_id="<1.2.3mail77@shop.example>")
    r = await client.post(URL, json=[hard, spam], headers=shop.auth("owner"))
    assert r.status_code == 200, r.text
    assert r.json() == {"recorded": 2, "duplicates": 0,
                        "consents_withdrawn": sorted([first.id, also.id])}
    assert (await consent(db, first.id), await consent(db, also.id),
            await consent(db, other.id)) == (False, False, True)
    async with db.reader() as s:
        history = await consent_history(s, first.id)
        spam_history = await consent_history(s, also.id)
        events = await timeline(s, SYSTEM, first.id)
        audits = (await s.scalars(select(AuditEntry).where(
            AuditEntry.subject_id == first.id, AuditEntry.action == "customer.consent"))).all()
    assert (history[0].granted, history[0].channel) == (False, "bounce")
    assert (spam_history[0].granted, spam_history[0].channel) == (False, "complaint")
    assert [a.data["channel"] for a in audits] == ["bounce"]
    mail_events = [e for e in events if e.kind == "mail"]
    assert [(e.status, e.text) for e in mail_events] == [("hard_bounce", bounced)]
    [row] = await events_for(db, bounced)
    assert (row.kind, row.mail_id, row.consents_withdrawn) == ("hard_bounce", 12345, 1)
    [spam_row] = await events_for(db, complained)
    assert spam_row.mail_id == 77  # read from our Message-ID

    # the provider delivers the same report again: nothing new
    r = await client.post(URL, json=[hard, spam], headers=shop.auth("owner"))
    assert r.json() == {"recorded": 0, "duplicates": 2, "consents_withdrawn": []}
    assert len(await events_for(db, bounced)) == 1
    async with db.reader() as s:
        assert len(await consent_history(s, first.id)) == len(history)


async def test_soft_bounces_count_three_in_thirty_days(
        db: Database, shop: Shop, client: httpx.AsyncClient) -> None:
    email = new_email()
    c = await customer(db, email)
    now = datetime.now(UTC)
    old = event("soft_bounce", email, at=now - timedelta(days=45))  # out of the window
    r = await client.post(URL, json=[old, event("soft_bounce", email, at=now - timedelta(
        days=10))], headers=shop.auth("owner"))
    assert r.json()["consents_withdrawn"] == []
    assert await consent(db, c.id) is True
    r = await client.post(URL, json=[event("soft_bounce", email, at=now - timedelta(days=5))],
                          headers=shop.auth("owner"))
    assert r.json()["consents_withdrawn"] == []  # two within 30 days so far
    assert await consent(db, c.id) is True
    r = await client.post(URL, json=[event("soft_bounce", email)],
                          headers=shop.auth("owner"))
    assert r.json()["consents_withdrawn"] == [c.id]
    assert await consent(db, c.id) is False
    assert [e.kind for e in await events_for(db, email)] == ["soft_bounce"] * 4


async def test_bad_batches_change_nothing(db: Database, shop: Shop,
                                          client: httpx.AsyncClient) -> None:
    email = new_email()
    c = await customer(db, email)
    good = event("hard_bounce", email)
    bad = [good, {"id": "", "type": "bounced", "email": "not-an-address", "at": "yesterday"},
           event("complaint", email, at=datetime(2026, 1, 1)), {"type": "complaint"},
           event("soft_bounce", email, at=datetime(1, 1, 1, tzinfo=UTC)),
           event("soft_bounce", email, at=datetime.now(UTC) + timedelta(days=3))]
    r = await client.post(URL, json=bad, headers=shop.auth("owner"))
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "validation_error"
    locs = {tuple(e["loc"][1:]) for e in body["errors"]}
    assert {("1", "id"), ("1", "type"), ("1", "email"), ("1", "at"), ("2", "at"),
            ("3", "id"), ("3", "email"), ("3", "at"), ("4", "at"), ("5", "at")} <= locs, locs
    assert await events_for(db, email) == []
    assert await consent(db, c.id) is True
    assert (await client.post(URL, json={"events": []}, headers=shop.auth("owner"))
            ).status_code == 422
    r = await client.post(URL, json=[good] * 1001, headers=shop.auth("owner"))
    assert r.status_code == 422
    # who may post: the owner's token (mail.events), not a manager's, not anonymous
    assert (await client.post(URL, json=[good])).status_code == 401
    assert (await client.post(URL, json=[good], headers=shop.auth("manager"))
            ).status_code == 403
    assert await events_for(db, email) == []


def test_cli_reads_the_same_format(tmp_path: Path, database_url: str) -> None:
    import asyncio

    email = new_email()
    c = asyncio.run(_customer_in_new_loop(database_url, email))
    file = tmp_path / "events.json"
    file.write_text(json.dumps([event("complaint", email), event("soft_bounce", email)]))
    runner = CliRunner()
    result = runner.invoke(cli_app, ["mail", "events", str(file),
                                     "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "2 recorded" in result.output and "1 consent" in result.output
    again = runner.invoke(cli_app, ["mail", "events", str(file),
                                    "--database-url", database_url])
    assert again.exit_code == 0 and "2 already recorded" in again.output
    file.write_text(json.dumps([{"type": "nonsense"}]))
    bad = runner.invoke(cli_app, ["mail", "events", str(file),
                                  "--database-url", database_url])
    assert bad.exit_code == 1 and "0.type" in bad.output
    assert asyncio.run(_consent_in_new_loop(database_url, c)) is False


async def _customer_in_new_loop(url: str, email: str) -> int:
    own = Database(url)
    try:
        return (await customer(own, email)).id
    finally:
        await own.dispose()


async def _consent_in_new_loop(url: str, customer_id: int) -> bool:
    own = Database(url)
    try:
        return await consent(own, customer_id)
    finally:
        await own.dispose()
