"""The staff knowledge board in the service desk (`GET /service/board`): the same board
as at the till and in the back office (`templates/_board.html`), of every store, since
the desk serves customers of every channel. Only translates HTTP to
`saumaton.service.board`."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from saumaton.service import chat
from saumaton.service.board import board
from saumaton.web.auth import db_of
from saumaton.web.i18n import N_
from saumaton.web.pages import gettext, page_router, render, require_staff

router = page_router("/service")


@router.get("/board")
async def desk_board(request: Request) -> Response:
    actor = await require_staff(request)
    chat.require_agent(actor)
    async with db_of(request).reader() as s:
        data = await board(s, actor)
    response = render(request, "service/board.html", {
        "title": gettext(request, N_("Staff board")), "board": data, "can_manage": False,
        "section": "board"})
    response.headers["Cache-Control"] = "no-store"
    return response
