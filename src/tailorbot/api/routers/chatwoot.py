"""``POST /v1/integrations/chatwoot/webhook``: tailorbot as a Chatwoot Agent Bot.

Chatwoot cannot send headers of tailorbot's choosing, so with ``chatwoot_secret`` set the
webhook signature authenticates each request. Without one (or with a Chatwoot version that
does not sign agent-bot webhooks) the server's API key does, which Chatwoot can carry only in
the bot's ``outgoing_url``: ``.../webhook?api_key=KEY`` (or an ``X-API-Key`` header, from a
proxy). A server with neither takes any request, as every other route does then.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response

from tailorbot.api.deps import API_KEY_HEADER, SettingsDep, api_key_refusal, get_chatwoot_bot
from tailorbot.api.errors import error_responses
from tailorbot.api.offload import off_loop
from tailorbot.api.responses import OrjsonResponse
from tailorbot.errors import BadRequest
from tailorbot.integrations.chatwoot import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Ignored,
    parse_webhook,
    verify_signature,
)

router = APIRouter(tags=["integrations"])


@router.post(
    "/v1/integrations/chatwoot/webhook",
    summary="Chatwoot Agent Bot webhook",
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
)
async def chatwoot_webhook(request: Request, settings: SettingsDep) -> Response:
    """Chatwoot's webhook payloads. An incoming message in a conversation the bot holds
    (`pending`) is personalized and answered through Chatwoot's API (in the background, with
    retries); a fallback, or a message without text, hands the conversation to the agents
    (`toggle_status` open); a CSAT answer is feedback on the conversation's last decision
    (not after a hand-over); `conversation_resolved` is logged as a resolution. A redelivered
    message or resolution is answered `{"action": "duplicate"}`, anything else
    `{"action": "ignored"}`. With `chatwoot_secret` set, a missing, wrong or stale
    `X-Chatwoot-Signature` is a 401 and nothing is stored."""
    raw = await request.body()
    if settings.chatwoot_secret is not None:
        verify_signature(
            settings.chatwoot_secret.get_secret_value(),
            raw,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER),
        )
    else:
        key = request.headers.get(API_KEY_HEADER) or request.query_params.get("api_key")
        refused = api_key_refusal(settings, key)
        if refused is not None:
            raise HTTPException(
                refused.status_code,
                f"{refused.detail}, or as ?api_key= in the bot's outgoing_url (or set "
                "TAILORBOT_CHATWOOT_SECRET and sign the webhooks)",
            )
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    action = parse_webhook(payload)
    if isinstance(action, Ignored):
        return OrjsonResponse({"action": "ignored", "reason": action.reason})
    # Only now: the signature is checked first, and ignored events need no bot.
    bot = await get_chatwoot_bot(request)
    return OrjsonResponse(await off_loop(request, bot.handle, action))
