"""The HTTP API: a FastAPI app built by :func:`tailorbot.api.app.create_app`."""

from tailorbot.api.app import create_app

__all__ = ["create_app"]
