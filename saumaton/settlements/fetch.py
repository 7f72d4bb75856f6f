"""Settlements from Paytrail's Payment API: list the period's settlements, ask for each
new one's payment report, and import the report when Paytrail POSTs it back.

The report request is asynchronous: Paytrail answers `{requestId}` and later POSTs the
report to the `callbackUrl` we give. That URL carries a token made for the request (32
random bytes): the callback's only credential, as Paytrail documents no signature for
it. The request row is committed before Paytrail is asked, so a report that arrives at
once finds it; a report that arrives twice (Paytrail re-sends until it gets HTTP 200)
is imported once, since the settlement is unique on Paytrail's id.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select, update

from saumaton.audit.services import record
from saumaton.core.actor import Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import NotFound
from saumaton.db.uow import Database
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailError
from saumaton.reports.period import Period
from saumaton.settlements.models import PaytrailSettlement, SettlementReportRequest
from saumaton.settlements.parsing import Defaults, ReportInvalid, parse_day, parse_report
from saumaton.settlements.services import ImportOutcome, import_report

CALLBACK_PATH = "/paytrail/settlement-report"


@dataclass
class FetchOutcome:
    found: int = 0
    already: list[str] = field(default_factory=list)  # Paytrail ids imported before
    requested: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, error)


async def fetch_settlements(db: Database, client: PaytrailClient, actor: Actor, period: Period,
                            public_url: str) -> FetchOutcome:
    """Ask Paytrail for the reports of the period's settlements not imported yet; the
    reports arrive at `{public_url}/paytrail/settlement-report/{token}`."""
    actor.require("reconcile.write")
    listing = await client.list_settlements(period.first, period.last)
    out = FetchOutcome(found=len(listing))
    ids = [str(x["id"]) for x in listing]
    async with db.reader() as s:
        imported = set((await s.scalars(select(PaytrailSettlement.paytrail_id).where(
            PaytrailSettlement.paytrail_id.in_(ids)))).all()) if ids else set()
    for item in listing:
        pid = str(item["id"])
        if pid in imported:
            out.already.append(pid)
            continue
        token = secrets.token_urlsafe(32)
        settled_on: date | None = None
        try:
            settled_on = parse_day(str(item.get("settledAt") or ""))
        except ValueError:
            settled_on = None
        async with db.uow() as uow:
            req = SettlementReportRequest(
                token=token, paytrail_id=pid[:40],
                reference=str(item.get("settlementReference") or "")[:40],
                settled_on=settled_on, requested_by=actor.label, status="requested")
            uow.session.add(req)
            await uow.session.flush()
            await record(uow, actor, "settlement.report_requested", "paytrail_settlement_request",
                         req.id, {"paytrail_id": pid})
            await uow.commit()
            req_id = req.id
        try:
            answer = await client.request_settlement_report(pid, {
                "requestType": "json", "callbackUrl": f"{public_url}{CALLBACK_PATH}/{token}",
                "includeItems": False})
        except PaytrailError as exc:
            await _mark(db, req_id, "failed", str(exc)[:300])
            out.failed.append((pid, str(exc)))
            continue
        async with db.uow() as uow:
            await uow.session.execute(update(SettlementReportRequest).where(
                SettlementReportRequest.id == req_id).values(
                request_id=str(answer.get("requestId", ""))[:64], updated_at=utcnow()))
            await uow.commit()
        out.requested.append(pid)
    return out


async def _mark(db: Database, req_id: int, status: str, error: str = "") -> None:
    async with db.uow() as uow:
        await uow.session.execute(update(SettlementReportRequest).where(
            SettlementReportRequest.id == req_id).values(status=status, error=error,
                                                          updated_at=utcnow()))
        await uow.commit()


async def receive_report(db: Database, token: str, body: bytes) -> ImportOutcome | None:
    """Import the report Paytrail POSTed for the request `token` names. None when it was
    imported already (a re-sent report). NotFound for an unknown token; ReportInvalid
    (nothing kept, the request marked failed) for a report that cannot be read."""
    async with db.uow() as uow:
        req = (await uow.session.scalars(
            select(SettlementReportRequest).where(SettlementReportRequest.token == token)
            .with_for_update())).one_or_none()
        if req is None:
            raise NotFound("no such report request", code="report_request_not_found")
        if req.status == "imported":
            return None
        actor = Actor(label=f"paytrail report for {req.requested_by}"[:200], name="Paytrail",
                      system=True)
        try:
            report = parse_report(body, "", Defaults(req.paytrail_id, req.reference,
                                                     req.settled_on))
        except ReportInvalid as exc:
            req_id = req.id
            await uow.rollback()
            await _mark(db, req_id, "failed", exc.detail[:300])
            raise
        out = await import_report(uow, actor, report, source="api")
        req.status = "imported"
        req.error = ""
        ids = out.imported or out.unchanged
        req.settlement_id = ids[0] if ids else None
        req.updated_at = utcnow()
        await uow.commit()
        return out


async def recent_requests(db: Database, limit: int = 20) -> list[SettlementReportRequest]:
    async with db.reader() as s:
        return list((await s.scalars(select(SettlementReportRequest).order_by(
            SettlementReportRequest.id.desc()).limit(limit))).all())
