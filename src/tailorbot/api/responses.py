"""JSON responses rendered with orjson (fast, and knows datetimes and numpy-free floats)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

_JSON = b"application/json"


class OrjsonResponse(Response):
    """``Response`` whose content is any orjson-serialisable value.

    >>> OrjsonResponse({"ok": True}).body
    b'{"ok":true}'
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class JsonAnswer:
    """The 200 answer of a lean route (api/fast.py): what :class:`OrjsonResponse` sends for
    ``content`` (the same two messages, the same headers in the same order), without
    ``Response``'s header assembly, which is for any status, headers and media type; some
    3,000 instructions of every decision's request.

    >>> import asyncio
    >>> sent = []
    >>> async def send(message):
    ...     sent.append(message)
    >>> asyncio.run(JsonAnswer({"ok": True})({"type": "http"}, None, send))
    >>> sent[0]["headers"], sent[1]["body"]
    ([(b'content-length', b'11'), (b'content-type', b'application/json')], b'{"ok":true}')
    """

    __slots__ = ("body",)
    status_code = 200

    def __init__(self, content: Any) -> None:
        self.body = orjson.dumps(content)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.body
        headers = [(b"content-length", str(len(body)).encode()), (b"content-type", _JSON)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
