from __future__ import annotations

import pytest

from tailorbot.errors import InvalidInput
from tailorbot.integrations.nlg import nlg_response, parse_nlg_request


def rasa_nlg_request(**change: object) -> dict:
    """The body Rasa 3.x posts to its NLG endpoint (from Rasa's NLG-server docs)."""
    body = {
        "response": "utter_card_arrival",
        "arguments": {},
        "id": "variation-2",
        "tracker": {
            "sender_id": "user_0",
            "slots": {"plan": "gold"},
            "latest_message": {
                "intent": {
                    "id": 3014457480322877053,
                    "name": "card_arrival",
                    "confidence": 0.9999994039535522,
                },
                "entities": [],
                "text": "Where is my card?",
                "message_id": "94838d6f49ff4366b254b6f6d23a90cf",
                "metadata": {},
                "intent_ranking": [],
            },
            "latest_event_time": 1599476297.694504,
            "followup_action": None,
            "paused": False,
            "events": [{"event": "session_started", "timestamp": 1599476297.6878452}],
            "latest_input_channel": "rest",
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
        "channel": {"name": "collector"},
    }
    body.update(change)
    return body


def test_reads_rasa_request() -> None:
    request = parse_nlg_request(rasa_nlg_request())
    assert request.response == "utter_card_arrival"
    assert (request.user_id, request.session_id) == ("user_0", "user_0")
    assert request.text == "Where is my card?"
    assert request.intent == "card_arrival" and request.confidence == pytest.approx(1.0)
    assert request.channel == "collector" and request.variation_id == "variation-2"
    assert request.slots == {"plan": "gold"}


def test_rasa_2_called_it_template_and_latest_message_may_be_empty() -> None:
    body = rasa_nlg_request(template="utter_greet")
    del body["response"]
    body["tracker"]["latest_message"] = {}
    body["channel"] = None
    request = parse_nlg_request(body)
    assert request.response == "utter_greet"
    assert request.text is None and request.intent is None and request.channel == "rasa"


def with_events(*events: dict) -> dict:
    body = rasa_nlg_request()
    body["tracker"]["events"] = [{"event": "session_started", "timestamp": 1.0}, *events]
    return body


def test_the_bots_last_utterance_before_the_customer_message_is_read() -> None:
    asked = {"event": "bot", "timestamp": 2.0, "text": "Has your card arrived yet?"}
    older = {"event": "bot", "timestamp": 1.5, "text": "Hello! How can I help?"}
    user = {"event": "user", "timestamp": 3.0, "text": "no"}
    after = {"event": "bot", "timestamp": 4.0, "text": "Let me check."}  # after the message
    assert parse_nlg_request(with_events(older, asked, user, after)).bot_text == asked["text"]
    # an utterance without text (an image) asked nothing; no bot event: none known
    image = {"event": "bot", "timestamp": 2.5, "text": None}
    assert parse_nlg_request(with_events(asked, image, user)).bot_text is None
    assert parse_nlg_request(with_events(user)).bot_text is None
    assert parse_nlg_request(rasa_nlg_request()).bot_text is None  # no user event either
    long = {"event": "bot", "timestamp": 2.0, "text": "x" * 2000 + " Did it arrive?"}
    assert parse_nlg_request(with_events(long, user)).bot_text.endswith("Did it arrive?")
    assert len(parse_nlg_request(with_events(long, user)).bot_text) == 500


def test_bad_requests_name_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_nlg_request({"arguments": {}})
    assert [p.field for p in caught.value.problems] == ["response", "tracker", "tracker.sender_id"]
    with pytest.raises(InvalidInput):
        parse_nlg_request(["utter_greet"])


@pytest.mark.parametrize(
    ("where", "value", "field"),
    [
        ("sender_id", "jane@example.com", "tracker.sender_id"),
        ("sender_id", "u9\n", "tracker.sender_id"),
        ("sender_id", "x" * 129, "tracker.sender_id"),
        ("text", "hi \ud800", "tracker.latest_message.text"),
    ],
)
def test_what_personalize_would_refuse_is_refused_while_reading(
    where: str, value: str, field: str
) -> None:
    body = rasa_nlg_request()
    if where == "sender_id":
        body["tracker"]["sender_id"] = value
    else:
        body["tracker"]["latest_message"]["text"] = value
    with pytest.raises(InvalidInput) as caught:
        parse_nlg_request(body)
    assert caught.value.http_status == 422
    assert [p.field for p in caught.value.problems] == [field]


def test_a_sender_id_of_another_type_says_so_and_a_number_reads_as_text() -> None:
    body = rasa_nlg_request()
    body["tracker"]["sender_id"] = ["c-42"]
    with pytest.raises(InvalidInput) as caught:
        parse_nlg_request(body)
    assert [(p.field, p.reason) for p in caught.value.problems] == [
        ("tracker.sender_id", "must be a string, got list")
    ]
    body["tracker"]["sender_id"] = 4242  # as the events route reads it
    assert parse_nlg_request(body).user_id == "4242"


def test_response_shape() -> None:
    assert nlg_response("Hi Ada") == {
        "text": "Hi Ada",
        "buttons": [],
        "image": None,
        "elements": [],
        "attachments": [],
        "custom": {},
    }
