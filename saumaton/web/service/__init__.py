"""The service desk's pages: the webshop chat widget's endpoints (visitor.py) and the
agents' desk at /service (agent.py). `router` holds both."""

from __future__ import annotations

from saumaton.web.pages import page_router
from saumaton.web.service import agent, visitor

router = page_router()
router.include_router(visitor.router)
router.include_router(agent.router)
