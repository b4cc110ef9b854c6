"""Tool definitions for LLM bots (OpenAI-style function calling).

An LLM bot gets tailorbot as two tools: ``tailorbot_personalize`` (call it for each customer
message: it returns the intent, the articles to cite, with ``url`` and ``snippet``, and a
suggested reply) and ``tailorbot_feedback`` (call it when the customer rates the answer or
says whether it solved the problem). ``GET /v1/integrations/openai-tools`` serves
:func:`tool_definitions`; :func:`request_for` turns a tool call the model made into the API
call to make.

>>> [tool["function"]["name"] for tool in tool_definitions()]
['tailorbot_personalize', 'tailorbot_feedback']
>>> tool_definitions(style="responses")[0]["name"]
'tailorbot_personalize'
>>> path, body = request_for(
...     "tailorbot_personalize",
...     '{"user_id": "u1", "session_id": "s1", "message": "hi", "language": "en"}')
>>> path, body["context"]
('/v1/personalize', {'language': 'en'})
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tailorbot.errors import InvalidInput, Problem

ID = {"type": "string", "pattern": "^[A-Za-z0-9_.:@\\-]{1,128}$"}

PERSONALIZE = {
    "name": "tailorbot_personalize",
    "description": (
        "Call for every customer message before answering. Returns the customer's intent, "
        "whether to hand over to a human (fallback.triggered), the knowledge-base articles "
        "to base the answer on (each with title, url and snippet: cite them), a suggested "
        "reply in the style that works best for this customer (response.text), and a "
        "decision_id to pass to tailorbot_feedback later."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "user_id": {**ID, "description": "Stable id of the customer."},
            "session_id": {**ID, "description": "Id of this conversation."},
            "message": {"type": "string", "description": "The customer's message, verbatim."},
            "last_bot_message": {
                "type": "string",
                "description": "Your own last message to the customer, verbatim: a short reply "
                "such as 'yes' or 'it still hasn't' is read as the answer to it.",
            },
            "channel": {
                "type": "string",
                "pattern": "^[a-z0-9_\\-]{1,32}$",
                "description": "Where the conversation happens, e.g. web, whatsapp.",
            },
            "language": {"type": "string", "description": "The customer's language, e.g. en."},
            "product": {"type": "string", "description": "The product the message is about."},
        },
        "required": ["user_id", "session_id", "message"],
        "additionalProperties": False,
    },
}

FEEDBACK = {
    "name": "tailorbot_feedback",
    "description": (
        "Call once the customer reacts to an answer: a rating (1-5), whether the problem "
        "was resolved, or which article helped. It teaches tailorbot which reply style works."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "decision_id": {**ID, "description": "decision_id from tailorbot_personalize."},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5, "description": "CSAT."},
            "resolved": {"type": "boolean", "description": "Did the answer solve it?"},
            "helpful_article_id": {**ID, "description": "An article the customer found useful."},
            "unhelpful_article_id": {**ID, "description": "An article that did not help."},
            "clicked_article_id": {**ID, "description": "An article the customer opened."},
        },
        "required": ["decision_id"],
        "additionalProperties": False,
    },
}

TOOLS = (PERSONALIZE, FEEDBACK)
ENDPOINTS = {"tailorbot_personalize": "/v1/personalize", "tailorbot_feedback": "/v1/feedback"}
CONTEXT_FIELDS = ("channel", "language", "product")


def tool_definitions(style: str = "chat_completions") -> list[dict[str, Any]]:
    """The tools, as Chat Completions (``{"type": "function", "function": {...}}``) or
    Responses API (``{"type": "function", "name": ...}``) definitions."""
    if style == "chat_completions":
        return [{"type": "function", "function": copy.deepcopy(tool)} for tool in TOOLS]
    if style == "responses":
        return [{"type": "function", **copy.deepcopy(tool)} for tool in TOOLS]
    raise InvalidInput(
        f"unknown tool style {style!r}",
        problems=[Problem(None, "style", "expected chat_completions or responses")],
    )


def request_for(tool_name: str, arguments: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The API path and JSON body for a tool call (``arguments`` as the model wrote them)."""
    path = ENDPOINTS.get(tool_name)
    if path is None:
        raise InvalidInput(
            f"unknown tool {tool_name!r}",
            problems=[Problem(None, "name", f"expected one of {', '.join(ENDPOINTS)}")],
        )
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                "tool arguments are not valid JSON",
                problems=[Problem(None, "arguments", exc.msg)],
            ) from None
    if not isinstance(arguments, dict):
        raise InvalidInput(
            "tool arguments must be a JSON object",
            problems=[Problem(None, "arguments", "not an object")],
        )
    body = dict(arguments)
    if tool_name == "tailorbot_personalize":
        context = {key: body.pop(key) for key in CONTEXT_FIELDS if key in body}
        if context:
            body["context"] = context
    return path, body
