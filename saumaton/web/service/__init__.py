"""The service desk's pages: the webshop chat widget's endpoints (visitor.py), the
agents' desk at /service (agent.py) and its staff board (staff_board.py). `router`
holds them all."""

from __future__ import annotations

from saumaton.web.pages import page_router
from saumaton.web.service import agent, returns, staff_board, visitor

router = page_router()
router.include_router(visitor.router)
router.include_router(staff_board.router)
router.include_router(agent.router)
router.include_router(returns.router)
