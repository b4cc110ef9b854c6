"""The LLM tools: what a model may call under the published schemas is what the API accepts,
the app (never the model) names the customer, and the documented loop works as written."""

from __future__ import annotations

import json
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tailorbot.errors import InvalidInput
from tailorbot.features.context import CHANNELS
from tailorbot.integrations.openai_tools import request_for, tool_definitions
from tailorbot.services.decisions.schemas import FeedbackRequest, PersonalizeRequest
from tests.api.conftest import make_client
from tests.api.support import written_decision
from tests.services.decisions.conftest import SEED, save_model

DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
MAX_TEXT = 200  # the test server's max_text_chars: the served tools must say it
IDS = {"user_id": "c-42", "session_id": "chat-7"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("llm-tools")
    save_model(data_dir)
    with make_client(data_dir, seed=SEED, bandit_sync_s=0.0, max_text_chars=MAX_TEXT) as client:
        yield client


def served(api: TestClient) -> dict[str, dict[str, Any]]:
    """The parameters of each tool, as the server publishes them."""
    tools = api.get("/v1/integrations/openai-tools").json()
    return {tool["function"]["name"]: tool["function"]["parameters"] for tool in tools}


def schema_problems(schema: dict[str, Any], value: Any) -> list[str]:
    """What ``value`` breaks of ``schema`` (the JSON Schema keywords the tools use)."""
    kinds = {"object": dict, "string": str, "boolean": bool, "integer": int}
    kind = schema.get("type")
    if kind and (not isinstance(value, kinds[kind]) or kind == "integer" and bool is type(value)):
        return [f"not {kind}"]
    problems = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        problems += [f"{key} missing" for key in schema.get("required", ()) if key not in value]
        if schema.get("additionalProperties") is False:
            problems += [f"{key} not allowed" for key in value if key not in properties]
        if len(value) < schema.get("minProperties", 0):
            problems.append("arguments: too few")
        for key, item in value.items():
            problems += [f"{key}: {p}" for p in schema_problems(properties.get(key, {}), item)]
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            problems.append("length")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append("pattern")
    if "enum" in schema and value not in schema["enum"]:
        problems.append("enum")
    if kind == "integer" and not schema.get("minimum", value) <= value <= schema.get(
        "maximum", value
    ):
        problems.append("range")
    return problems


def decision_id(api: TestClient) -> str:
    _, body = request_for("tailorbot_personalize", {"message": "where is my card"}, **IDS)
    answer = api.post("/v1/personalize", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["decision_id"])


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


def test_the_app_not_the_model_names_the_customer() -> None:
    for tool in tool_definitions():
        properties = tool["function"]["parameters"]["properties"]
        assert not {"user_id", "session_id"} & set(properties), tool["function"]["name"]
    path, body = request_for("tailorbot_personalize", '{"message": "hi"}', **IDS)
    assert path == "/v1/personalize" and PersonalizeRequest.model_validate(body).user_id == "c-42"
    assert (body["user_id"], body["session_id"]) == ("c-42", "chat-7")
    # ids the model still writes are refused, never sent (nor overridden in silence)
    for key in IDS:
        with pytest.raises(InvalidInput, match=f"{key}: the app supplies the customer's ids"):
            request_for("tailorbot_personalize", {"message": "hi", key: "guess"}, **IDS)
    with pytest.raises(InvalidInput, match="needs the app's own user_id and session_id"):
        request_for("tailorbot_personalize", {"message": "hi"})
    with pytest.raises(InvalidInput, match="needs the app's own session_id"):
        request_for("tailorbot_personalize", {"message": "hi"}, user_id="c-42")
    with pytest.raises(InvalidInput, match=r"user_id \(the app's"):
        request_for("tailorbot_personalize", {"message": "hi"}, user_id="a b", session_id="s")
    # the same call fits feedback, whose body takes no ids
    path, body = request_for("tailorbot_feedback", {"decision_id": "d1", "rating": 4}, **IDS)
    assert path == "/v1/feedback" and body == {"decision_id": "d1", "rating": 4}
    with pytest.raises(InvalidInput, match="user_id: the app supplies"):
        request_for("tailorbot_feedback", {"decision_id": "d1", "rating": 4, "user_id": "u"})


def test_channel_names_the_channels_the_bandit_knows() -> None:
    channel = tool_definitions()[0]["function"]["parameters"]["properties"]["channel"]
    named = set(re.findall(r"[a-z]+", channel["description"]))
    assert set(CHANNELS) <= named
    assert not {"web", "whatsapp", "sms", "telegram"} & named
    _, body = request_for("tailorbot_personalize", {"message": "hi", "channel": "voice"}, **IDS)
    assert PersonalizeRequest.model_validate(body).context.channel == "voice"
    assert channel["enum"] == list(CHANNELS)  # as the docs say: any other is refused
    with pytest.raises(InvalidInput, match="channel") as refused:
        request_for("tailorbot_personalize", {"message": "hi", "channel": "sms"}, **IDS)
    assert [p.field for p in refused.value.problems] == ["channel"]


def personalize_calls(max_text: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Arguments inside the published schema (bounds included), and outside it."""
    inside: list[dict[str, Any]] = [
        {"message": "x"},
        {"message": "y" * max_text, "last_bot_message": "z" * max_text},
        {"message": "yes", "last_bot_message": ""},
        {"message": "card?", "language": "l" * 16, "product": "p" * 64, "channel": "messaging"},
        *({"message": "hi", "channel": channel} for channel in CHANNELS),
    ]
    outside: list[tuple[str, dict[str, Any]]] = [  # (the argument at fault, the call)
        ("message", {}),
        ("message", {"message": ""}),
        ("message", {"message": 5}),
        ("message", {"message": "y" * (max_text + 1)}),
        ("last_bot_message", {"message": "hi", "last_bot_message": "z" * (max_text + 1)}),
        ("language", {"message": "hi", "language": "l" * 17}),
        ("product", {"message": "hi", "product": "p" * 65}),
        ("channel", {"message": "hi", "channel": "Web"}),
        ("channel", {"message": "hi", "channel": "c" * 33}),
        ("channel", {"message": "hi", "channel": "sms"}),
        ("user_id", {"message": "hi", "user_id": "u-9"}),
        ("session_id", {"message": "hi", "session_id": "s-9"}),
        ("context", {"message": "hi", "context": {"channel": "chat"}}),
    ]
    return inside, outside


def feedback_calls(decision: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    inside: list[dict[str, Any]] = [
        {"decision_id": decision, "rating": 1},
        {"decision_id": decision, "rating": 5, "resolved": False},
        {"decision_id": decision, "resolved": True},
        # article ids the knowledge base has (an unknown one is a 422 the schema cannot say)
        {"decision_id": decision, "clicked_article_id": "kb-card-delivery-estimate"},
        {
            "decision_id": decision,
            "helpful_article_id": "kb-card-arrival",
            "unhelpful_article_id": "kb-card-tracking",
        },
    ]
    outside: list[tuple[str, dict[str, Any]]] = [
        ("arguments", {"decision_id": decision}),  # no signal
        ("decision_id", {"rating": 5}),
        ("decision_id", {"decision_id": "", "rating": 5}),
        ("rating", {"decision_id": decision, "rating": 0}),
        ("rating", {"decision_id": decision, "rating": 6}),
        ("rating", {"decision_id": decision, "rating": "5"}),
        ("rating", {"decision_id": decision, "rating": True}),
        ("resolved", {"decision_id": decision, "resolved": "yes"}),
        ("helpful_article_id", {"decision_id": decision, "helpful_article_id": "a" * 129}),
        ("clicked_article_id", {"decision_id": decision, "clicked_article_id": "a b"}),
        ("comment", {"decision_id": decision, "rating": 5, "comment": "great"}),
    ]
    return inside, outside


def test_calls_inside_the_schemas_are_accepted_and_others_refused(api: TestClient) -> None:
    schemas = served(api)
    refused_calls = {
        "tailorbot_personalize": personalize_calls(MAX_TEXT)[1],
        "tailorbot_feedback": feedback_calls("d-1")[1],
    }
    # the schemas alone: each call the API refuses breaks them, at the argument at fault
    for name, outside in refused_calls.items():
        for culprit, arguments in outside:
            problems = schema_problems(schemas[name], arguments)
            assert any(p.startswith(culprit) for p in problems), (
                f"{name}'s schema admits {arguments}, which the API refuses ({problems})"
            )
    # request_for refuses them before they are sent, naming the argument
    for name, outside in refused_calls.items():
        for culprit, arguments in outside:
            with pytest.raises(InvalidInput, match=f"{name} call refused: ") as refused:
                request_for(name, arguments, **IDS, max_text_chars=MAX_TEXT)
            assert culprit in {p.field for p in refused.value.problems}, arguments
    # and every call inside them (bounds included) is one the API accepts
    accepted_calls = {
        "tailorbot_personalize": personalize_calls(MAX_TEXT)[0],
        "tailorbot_feedback": feedback_calls(decision_id(api))[0],
    }
    for name, inside in accepted_calls.items():
        for arguments in inside:
            assert schema_problems(schemas[name], arguments) == [], arguments
            path, body = request_for(name, json.dumps(arguments), **IDS, max_text_chars=MAX_TEXT)
            answer = api.post(path, json=body)
            assert answer.status_code == 200, (arguments, answer.text)
    # the server's default bound, when neither side is told otherwise
    default = tool_definitions()[0]["function"]["parameters"]["properties"]["message"]
    served_message = schemas["tailorbot_personalize"]["properties"]["message"]
    assert (default["maxLength"], served_message["maxLength"]) == (5000, MAX_TEXT)


def test_what_the_schema_cannot_say_is_described_and_enforced() -> None:
    feedback = tool_definitions()[1]["function"]
    signals = [name for name in FeedbackRequest.model_fields if name != "decision_id"]
    assert all(name in feedback["description"] for name in signals)
    assert "at least one" in feedback["description"]
    with pytest.raises(InvalidInput, match="arguments: .*no signal"):
        request_for("tailorbot_feedback", {"decision_id": "d1"})
    unhelpful = feedback["parameters"]["properties"]["unhelpful_article_id"]["description"]
    assert "not the helpful one" in unhelpful
    with pytest.raises(InvalidInput, match="same article"):
        request_for(
            "tailorbot_feedback",
            {"decision_id": "d1", "helpful_article_id": "a1", "unhelpful_article_id": "a1"},
        )


def test_bad_tool_calls() -> None:
    with pytest.raises(InvalidInput, match="unknown tool"):
        request_for("tailorbot_erase", "{}")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        request_for("tailorbot_feedback", "{decision_id")
    with pytest.raises(InvalidInput, match="JSON object"):
        request_for("tailorbot_feedback", "[1]")


def documented_loop() -> str:
    section = DOCS.read_text().split("## LLM bots\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


def call(call_id: str, name: str, arguments: dict[str, Any]) -> types.SimpleNamespace:
    function = types.SimpleNamespace(name=name, arguments=json.dumps(arguments))
    return types.SimpleNamespace(id=call_id, type="function", function=function)


class ScriptedModel:
    """A chat-completions client whose model makes parallel tool calls, then feedback, then
    answers; it checks each request's messages as OpenAI's tool protocol wants them."""

    def __init__(self) -> None:
        self.chat = types.SimpleNamespace(completions=self)
        self.turn = 0
        self.results: dict[str, Any] = {}

    def create(self, *, model: str, messages: list[Any], tools: list[Any]) -> Any:
        assert [t["function"]["name"] for t in tools] == [
            "tailorbot_personalize",
            "tailorbot_feedback",
        ]
        self.check_protocol(messages)
        self.turn += 1
        if self.turn == 1:  # two parallel calls, and one with an id the model made up
            calls = [
                call("p1", "tailorbot_personalize", {"message": "will my phone work in Japan"}),
                call("p2", "tailorbot_personalize", {"message": "roaming?", "channel": "chat"}),
                call("p3", "tailorbot_personalize", {"message": "hi", "user_id": "guess"}),
            ]
        elif self.turn == 2:
            decision = self.results["p1"]["decision_id"]
            calls = [call("f1", "tailorbot_feedback", {"decision_id": decision, "rating": 5})]
        else:
            calls = []
        message = types.SimpleNamespace(role="assistant", content="ok", tool_calls=calls or None)
        return types.SimpleNamespace(choices=[types.SimpleNamespace(message=message)])

    def check_protocol(self, messages: list[Any]) -> None:
        """After the first turn: each assistant message with tool_calls appears once, followed
        by exactly one tool message per call, in order."""
        rest = messages[2:]
        while rest:
            assistant, rest = rest[0], rest[1:]
            assert getattr(assistant, "role", None) == "assistant", assistant
            ids = [c.id for c in assistant.tool_calls]
            answers, rest = rest[: len(ids)], rest[len(ids) :]
            roles = [m["role"] if isinstance(m, dict) else m.role for m in answers]
            assert roles == ["tool"] * len(ids), f"{len(ids)} tool calls answered by {roles}"
            assert [m["tool_call_id"] for m in answers] == ids
            self.results.update({m["tool_call_id"]: json.loads(m["content"]) for m in answers})


def test_the_documented_loop_works_as_written(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ScriptedModel()
    openai = types.ModuleType("openai")
    openai.OpenAI = lambda: model  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "openai", openai)
    monkeypatch.setattr(httpx, "Client", lambda base_url: api)
    namespace: dict[str, Any] = {}
    exec(compile(documented_loop(), str(DOCS), "exec"), namespace)  # noqa: S102
    assert model.turn == 3 and namespace["message"].tool_calls is None
    results = model.results
    assert set(results) == {"p1", "p2", "p3", "f1"}
    for key in ("p1", "p2"):  # recorded for the app's customer, not one the model named
        record = written_decision(api, results[key]["decision_id"])
        assert (record["user_id"], record["session_id"]) == ("c-42", "chat-7"), record
    assert "user_id: the app supplies the customer's ids" in results["p3"]["error"]
    assert results["f1"]["decision_id"] == results["p1"]["decision_id"]
    assert results["f1"]["applied"] is True
