from __future__ import annotations

import json

import pytest

from tailorbot.errors import InvalidInput
from tailorbot.integrations.openai_tools import request_for, tool_definitions
from tailorbot.services.decisions.schemas import FeedbackRequest, PersonalizeRequest


def test_tools_follow_the_function_calling_schema() -> None:
    tools = tool_definitions()
    assert json.loads(json.dumps(tools)) == tools  # plain JSON
    for tool in tools:
        assert tool["type"] == "function"
        function = tool["function"]
        assert set(function) == {"name", "description", "parameters"}
        parameters = function["parameters"]
        assert parameters["type"] == "object" and parameters["additionalProperties"] is False
        assert set(parameters["required"]) <= set(parameters["properties"])
    flat = tool_definitions(style="responses")
    assert [t["name"] for t in flat] == [t["function"]["name"] for t in tools]
    with pytest.raises(InvalidInput):
        tool_definitions(style="anthropic")


def test_every_tool_argument_is_accepted_by_the_api() -> None:
    """A call using every property must validate against the real request models."""
    personalize = {
        "user_id": "u1",
        "session_id": "s1",
        "message": "card?",
        "last_bot_message": "How can I help?",
        "channel": "whatsapp",
        "language": "en",
        "product": "card",
    }
    path, body = request_for("tailorbot_personalize", json.dumps(personalize))
    assert path == "/v1/personalize"
    request = PersonalizeRequest.model_validate(body)
    assert request.context.channel == "whatsapp" and request.context.product == "card"
    assert request.last_bot_message == "How can I help?"
    properties = tool_definitions()[0]["function"]["parameters"]["properties"]
    assert set(properties) == set(personalize)

    feedback = {
        "decision_id": "d1",
        "rating": 5,
        "resolved": True,
        "helpful_article_id": "a1",
        "unhelpful_article_id": "a2",
        "clicked_article_id": "a3",
    }
    path, body = request_for("tailorbot_feedback", feedback)
    assert path == "/v1/feedback"
    assert FeedbackRequest.model_validate(body).signals()["rating"] == 5
    properties = tool_definitions()[1]["function"]["parameters"]["properties"]
    assert set(properties) == set(FeedbackRequest.model_fields)


def test_bad_tool_calls() -> None:
    with pytest.raises(InvalidInput, match="unknown tool"):
        request_for("tailorbot_erase", "{}")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        request_for("tailorbot_feedback", "{decision_id")
    with pytest.raises(InvalidInput, match="JSON object"):
        request_for("tailorbot_feedback", "[1]")
