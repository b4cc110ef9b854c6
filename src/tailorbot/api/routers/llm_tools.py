"""``GET /v1/integrations/openai-tools``: tailorbot as tools of an LLM bot."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from tailorbot.api.deps import SettingsDep
from tailorbot.api.errors import error_responses
from tailorbot.api.responses import OrjsonResponse
from tailorbot.integrations.openai_tools import tool_definitions

router = APIRouter(tags=["integrations"])


@router.get(
    "/v1/integrations/openai-tools",
    summary="Function-calling tool definitions for LLM bots",
    responses=error_responses(401, 403, 422),
)
async def openai_tools(
    settings: SettingsDep,
    style: Annotated[
        str,
        Query(
            pattern="^(chat_completions|responses)$",
            description="chat_completions (`{type, function: {...}}`) or responses (flat).",
        ),
    ] = "chat_completions",
) -> Response:
    """A JSON list of tool definitions (OpenAI function-calling schema) for
    `tailorbot_personalize` and `tailorbot_feedback`: give them to the model, and turn its
    tool calls into `POST /v1/personalize` / `POST /v1/feedback` (docs/integrations.md).
    The arguments' bounds are this server's (message texts: `max_text_chars`); the customer's
    ids are never the model's to give: the bot adds its own (`request_for`)."""
    # small definitions, built in microseconds: on the loop, no thread needed
    return OrjsonResponse(tool_definitions(style, max_text_chars=settings.max_text_chars))
