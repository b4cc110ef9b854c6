"""Tool definitions for LLM bots (OpenAI-style function calling).

An LLM bot gets tailorbot as two tools: ``tailorbot_personalize`` (call it for each customer
message: it returns the intent, the articles to cite, with ``url`` and ``snippet``, and a
suggested reply) and ``tailorbot_feedback`` (call it when the customer rates the answer or
says whether it solved the problem). ``GET /v1/integrations/openai-tools`` serves
:func:`tool_definitions`; :func:`request_for` turns a tool call the model made into the API
call to make.

The model is never asked who the customer is: the app passes its own ``user_id`` and
``session_id`` to :func:`request_for`, which puts them into the personalize body and refuses
ids the model wrote itself. The arguments' bounds are those of the request models
(:class:`PersonalizeRequest`, :class:`FeedbackRequest`), so a call that keeps to the published
schema is one the API accepts, and :func:`request_for` refuses any other before it is sent.
The schemas are for plain (non-``strict``) function calling, where the model reads the whole
JSON Schema as guidance; what no schema keyword says is in the descriptions too.

>>> [tool["function"]["name"] for tool in tool_definitions()]
['tailorbot_personalize', 'tailorbot_feedback']
>>> tool_definitions(style="responses")[0]["name"]
'tailorbot_personalize'
>>> path, body = request_for(
...     "tailorbot_personalize", '{"message": "hi", "language": "en"}',
...     user_id="u1", session_id="s1")
>>> path, body["user_id"], body["context"]
('/v1/personalize', 'u1', {'language': 'en'})
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import BaseModel, ValidationError

from tailorbot.config import Settings
from tailorbot.errors import InvalidInput, Problem
from tailorbot.features.context import CHANNELS
from tailorbot.services.decisions.schemas import FeedbackRequest, PersonalizeRequest

PERSONALIZE_NAME = "tailorbot_personalize"
FEEDBACK_NAME = "tailorbot_feedback"
ENDPOINTS = {PERSONALIZE_NAME: "/v1/personalize", FEEDBACK_NAME: "/v1/feedback"}
IDENTITIES = ("user_id", "session_id")  # the app's, never the model's
CONTEXT_FIELDS = ("channel", "language", "product")
TEXT_FIELDS = ("message", "last_bot_message")
SIGNALS = tuple(name for name in FeedbackRequest.model_fields if name != "decision_id")
# The server's default bound on message texts (413 above it; TAILORBOT_MAX_TEXT_CHARS).
MAX_TEXT_CHARS: int = Settings.model_fields["max_text_chars"].default

_PERSONALIZE_SCHEMA = PersonalizeRequest.model_json_schema()
_CONTEXT_SCHEMA = _PERSONALIZE_SCHEMA["$defs"]["PersonalizeContext"]
_FEEDBACK_SCHEMA = FeedbackRequest.model_json_schema()


def _argument(model_schema: dict[str, Any], name: str, description: str) -> dict[str, Any]:
    """Field ``name`` of a request model's JSON schema as a tool argument: its type and bounds
    (an optional field's ``anyOf [..., null]`` unwrapped), without pydantic's title, default
    and description."""
    schema = dict(model_schema["properties"][name])
    alternatives = [a for a in schema.pop("anyOf", ()) if a.get("type") != "null"]
    if len(alternatives) == 1:
        schema.update(alternatives[0])
    for key in ("title", "default", "description"):
        schema.pop(key, None)
    if "type" not in schema:  # a request model changed shape: fail at start-up, loudly
        raise TypeError(f"{name}: no single JSON type to publish as a tool argument")
    return {**schema, "description": description}


def _personalize(max_text_chars: int) -> dict[str, Any]:
    channels = ", ".join(CHANNELS)
    properties = {
        "message": {
            **_argument(_PERSONALIZE_SCHEMA, "message", "The customer's message, verbatim."),
            "maxLength": max_text_chars,
        },
        "last_bot_message": {
            **_argument(
                _PERSONALIZE_SCHEMA,
                "last_bot_message",
                "Your own last message to the customer, verbatim: a short reply such as "
                "'yes' or 'it still hasn't' is read as the answer to it. Empty when you have "
                "said nothing yet.",
            ),
            "maxLength": max_text_chars,
        },
        "channel": {
            **_argument(
                _CONTEXT_SCHEMA,
                "channel",
                f"How the customer reaches you, one of: {channels} (default chat). Only these "
                "are told apart when choosing the reply style.",
            ),
            "enum": list(CHANNELS),
        },
        "language": _argument(
            _CONTEXT_SCHEMA, "language", "The customer's language code, e.g. en or pt-BR."
        ),
        "product": _argument(
            _CONTEXT_SCHEMA, "product", "Short name of the product the message is about."
        ),
    }
    return {
        "name": PERSONALIZE_NAME,
        "description": (
            "Call for every customer message before answering. Returns the customer's intent, "
            "whether to hand over to a human (fallback.triggered), the knowledge-base articles "
            "to base the answer on (each with title, url and snippet: cite them), a suggested "
            "reply in the style that works best for this customer (response.text), and a "
            "decision_id to pass to tailorbot_feedback later. The customer and conversation "
            "are known already: do not name them."
        ),
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": ["message"],
            "additionalProperties": False,
        },
    }


def _feedback() -> dict[str, Any]:
    signals = ", ".join(SIGNALS)
    descriptions = {
        "decision_id": "decision_id from tailorbot_personalize.",
        "rating": "The customer's satisfaction rating, 1 (worst) to 5 (best).",
        "resolved": "Whether the answer solved the customer's problem.",
        "helpful_article_id": "id of an article the customer found useful.",
        "unhelpful_article_id": "id of an article that did not help (not the helpful one).",
        "clicked_article_id": "id of an article the customer opened.",
    }
    properties = {
        name: _argument(_FEEDBACK_SCHEMA, name, description)
        for name, description in descriptions.items()
    }
    return {
        "name": FEEDBACK_NAME,
        "description": (
            "Call once the customer reacts to an answer. Give the decision_id and at least "
            f"one of: {signals}. It teaches tailorbot which reply style works."
        ),
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": ["decision_id"],
            # decision_id and at least one signal (additionalProperties: false)
            "minProperties": 2,
            "additionalProperties": False,
        },
    }


def tool_definitions(
    style: str = "chat_completions", *, max_text_chars: int = MAX_TEXT_CHARS
) -> list[dict[str, Any]]:
    """The tools, as Chat Completions (``{"type": "function", "function": {...}}``) or
    Responses API (``{"type": "function", "name": ...}``) definitions; ``max_text_chars``
    is the server's bound on message texts."""
    tools = (_personalize(max_text_chars), _feedback())
    if style == "chat_completions":
        return [{"type": "function", "function": copy.deepcopy(tool)} for tool in tools]
    if style == "responses":
        return [{"type": "function", **copy.deepcopy(tool)} for tool in tools]
    raise InvalidInput(
        f"unknown tool style {style!r}",
        problems=[Problem(None, "style", "expected chat_completions or responses")],
    )


def _refused(tool_name: str, problems: list[Problem]) -> InvalidInput:
    details = "; ".join(f"{p.field}: {p.reason}" for p in problems)
    return InvalidInput(f"{tool_name} call refused: {details}", problems=problems)


def _validated(tool_name: str, model: type[BaseModel], body: dict[str, Any]) -> None:
    try:
        model.model_validate(body)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = [str(part) for part in error["loc"] if part != "context"]
            field = loc[0] if loc else "arguments"
            if field in IDENTITIES:
                field = f"{field} (the app's, passed to request_for)"
            problems.append(Problem(None, field, error["msg"]))
        raise _refused(tool_name, problems) from None


def request_for(
    tool_name: str,
    arguments: str | dict[str, Any],
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    max_text_chars: int = MAX_TEXT_CHARS,
) -> tuple[str, dict[str, Any]]:
    """The API path and JSON body for a tool call (``arguments`` as the model wrote them).

    ``user_id`` and ``session_id`` are the app's own ids of the customer and conversation:
    required for ``tailorbot_personalize`` (and put into its body), unused by
    ``tailorbot_feedback``, so one call fits every tool call. Arguments outside the tool's
    schema (unknown ones, ids the model made up, values the API would refuse, texts over
    ``max_text_chars``) are :class:`InvalidInput` naming each argument and why.
    """
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
    known = (
        (*TEXT_FIELDS, *CONTEXT_FIELDS)
        if tool_name == PERSONALIZE_NAME
        else tuple(FeedbackRequest.model_fields)
    )
    unknown = [
        Problem(
            None,
            key,
            "the app supplies the customer's ids; the model must not"
            if key in IDENTITIES
            else "not an argument of this tool",
        )
        for key in arguments
        if key not in known
    ]
    if unknown:
        raise _refused(tool_name, unknown)
    if tool_name == FEEDBACK_NAME:
        body = dict(arguments)
        _validated(tool_name, FeedbackRequest, body)
        return path, body
    if user_id is None or session_id is None:
        given = {"user_id": user_id, "session_id": session_id}
        missing = [name for name in IDENTITIES if given[name] is None]
        raise InvalidInput(
            f"{tool_name} needs the app's own {' and '.join(missing)}: "
            "request_for(name, arguments, user_id=..., session_id=...)",
            problems=[Problem(None, name, "missing") for name in missing],
        )
    body = {key: arguments[key] for key in TEXT_FIELDS if key in arguments}
    context = {key: arguments[key] for key in CONTEXT_FIELDS if key in arguments}
    body = {"user_id": user_id, "session_id": session_id, **body}
    if context:
        body["context"] = context
    _validated(tool_name, PersonalizeRequest, body)
    out_of_bounds = [
        Problem(None, key, f"{len(body[key])} characters; at most {max_text_chars} are accepted")
        for key in TEXT_FIELDS
        if isinstance(body.get(key), str) and len(body[key]) > max_text_chars
    ]
    if "channel" in context and context["channel"] not in CHANNELS:
        # the schema's enum: the API takes any channel, but the bandit tells only these apart
        allowed = ", ".join(CHANNELS)
        out_of_bounds.append(Problem(None, "channel", f"not one of {allowed}"))
    if out_of_bounds:
        raise _refused(tool_name, out_of_bounds)
    return path, body
