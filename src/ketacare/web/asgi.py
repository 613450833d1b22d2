"""ASGI entry point for uvicorn and other servers: ``ketacare.web.asgi:app``."""

from ketacare.web.main import create_app

app = create_app()
