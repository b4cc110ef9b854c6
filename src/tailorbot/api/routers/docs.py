"""``/openapi.json``, ``/docs`` (Swagger UI) and ``/redoc``, behind the API key when one is set.

The app is built without FastAPI's own documentation routes; these serve the same pages, so
that the schema and the docs follow the key like every other route (``public_docs`` opens
them). With a key, the browser pages need a client that sends ``X-API-Key`` (a proxy, or the
key in the Swagger UI's *Authorize* for its calls once the schema is loaded).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import Response

from tailorbot.api.responses import OrjsonResponse

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request) -> Response:
    return OrjsonResponse(request.app.openapi())


@router.get("/docs")
async def swagger_ui(request: Request) -> Response:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} - docs")


@router.get("/redoc")
async def redoc(request: Request) -> Response:
    return get_redoc_html(openapi_url="/openapi.json", title=f"{request.app.title} - ReDoc")
