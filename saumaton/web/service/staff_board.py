"""The staff knowledge board in the service desk (`GET /service/board`): the same board
as at the till and in the back office (`templates/_board.html`), of every store, since
the desk serves customers of every channel. Only translates HTTP to
`saumaton.service.board`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request
from fastapi.responses import Response

from saumaton.core.actor import Actor
from saumaton.service.board import board
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import gettext, page_router, render
from saumaton.web.service.common import service_agent

router = page_router("/service")


@router.get("/board")
async def desk_board(request: Request,
                     actor: Annotated[Actor, service_agent()]) -> Response:
    async with db_of(request).reader() as s:
        data = await board(s, actor)
    response = render(request, "service/board.html", {
        "title": gettext(request, N_("Staff board")), "board": data, "can_manage": False,
        "section": "board"})
    response.headers["Cache-Control"] = "no-store"
    return response
