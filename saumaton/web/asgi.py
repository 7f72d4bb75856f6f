"""ASGI entry point: `uvicorn saumaton.web.asgi:app`."""

from saumaton.web.app import create_app

app = create_app()
