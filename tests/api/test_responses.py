"""The lean routes' answer (api/responses.py): the messages OrjsonResponse sends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from tailorbot.api.responses import JsonAnswer, OrjsonResponse


def _sent(response: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    asyncio.run(response({"type": "http"}, None, send))
    return messages


@pytest.mark.parametrize(
    "content",
    [
        {"ok": True},
        {"text": "é ✓ \u2028", "n": [1, 2.5, None], "at": datetime(2026, 1, 1, tzinfo=UTC)},
        [],
        "",
        {"big": "x" * 100_000},
    ],
)
def test_a_lean_answer_sends_what_the_orjson_response_sends(content: Any) -> None:
    answer = JsonAnswer(content)
    assert _sent(answer) == _sent(OrjsonResponse(content))
    assert answer.status_code == 200 and answer.body == OrjsonResponse(content).body
