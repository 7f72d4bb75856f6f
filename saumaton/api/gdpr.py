"""/api/v1 GDPR: export one customer's data, erase it (accounting records kept)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import Field

from saumaton.core.actor import Actor
from saumaton.core.types import MAX_ID, Input
from saumaton.customers.gdpr import ErasureReport, erase_customer, export_and_audit
from saumaton.web.auth import db_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["customers"])


class ErasureIn(Input):
    reason: str = Field(max_length=2000, description="why (e.g. the customer's request of "
                                                     "3 May); kept in the audit log")


@router.get(
    "/customers/{customer_id}/export",
    summary="Everything held about one customer, as a JSON download (GDPR art. 15/20)",
    operation_id="export_customer",
    responses={200: {"content": {"application/json": {}},
                     "description": "the export; audited as customer.export"}},
)
async def export(request: Request, customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                 actor: Annotated[Actor, api_requires("customers.read", everywhere=True)]
                 ) -> Response:
    async with db_of(request).uow() as uow:
        data = await export_and_audit(uow, actor, customer_id)
        await uow.commit()
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="customer-{customer_id}.json"',
        "Cache-Control": "no-store"})


@router.post(
    "/customers/{customer_id}/erase", response_model=ErasureReport,
    operation_id="erase_customer",
    summary="Anonymise one customer everywhere; orders, payments and VAT are kept "
            "(GDPR art. 17, bookkeeping law)",
    responses={409: {"description": "already_erased or customer_has_open_orders"}},
)
async def erase(request: Request, customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                body: ErasureIn,
                actor: Annotated[Actor, api_requires("customers.erase", everywhere=True)]
                ) -> ErasureReport:
    async with db_of(request).uow() as uow:
        report = await erase_customer(uow, actor, customer_id, body.reason)
        await uow.commit()
    return report
