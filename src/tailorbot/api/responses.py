"""A JSON response rendered with orjson (fast, and knows datetimes and numpy-free floats)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class OrjsonResponse(Response):
    """``Response`` whose content is any orjson-serialisable value.

    >>> OrjsonResponse({"ok": True}).body
    b'{"ok":true}'
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
