"""The Rasa domain's own responses (``rasa_domain``): read and checked with the settings,
chosen and filled as Rasa would, and answered by the NLG endpoint for every response that
no KB template words."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from tailorbot.config import Settings
from tailorbot.integrations import nlg
from tailorbot.integrations.rasa_domain import RasaResponses
from tests.api.conftest import make_client
from tests.api.support import wait_until, written_decision
from tests.integrations.test_api_rasa import logged_events
from tests.integrations.test_nlg import rasa_nlg_request
from tests.services.decisions.conftest import SEED, save_model

NLG = "/v1/integrations/rasa/nlg"
DOMAIN = """
version: "3.1"
responses:
  utter_ask_email:
    - text: "Your e-mail address, {first_name}? (case {case})"
      buttons: [{title: "Skip", payload: "/deny"}]
      image: "https://example.com/mail.png"
  utter_greet:
    - text: "Hello from the domain"
  utter_goodbye:
    - text: "Bye from the domain"
  utter_plan:
    - text: "Any plan."
    - text: "Gold plan!"
      condition: [{type: slot, name: plan, value: gold}]
    - text: "Plan on Slack"
      channel: slack
      custom: {blocks: []}
"""
GOLD = [{"type": "slot", "name": "plan", "value": "gold"}]
VIP = [{"type": "slot", "name": "vip", "value": True}]
PLAN = [
    {"text": "any"},
    {"text": "gold", "condition": GOLD},
    {"text": "slack", "channel": "slack"},
    {"text": "slack vip", "channel": "slack", "condition": VIP},
]


def texts(responses: RasaResponses, slots: dict, channel: str | None) -> list[str]:
    return [v["text"] for v in responses.variations("utter_plan", slots, channel)]


def test_channel_then_condition_choose_the_variations_as_rasa_does() -> None:
    responses = RasaResponses({"utter_plan": PLAN})
    # conditional for the channel > unconditional for the channel > the same without one
    assert texts(responses, {"plan": "gold", "vip": True}, "slack") == ["slack vip"]
    assert texts(responses, {"plan": "gold", "vip": False}, "slack") == ["slack"]
    assert texts(responses, {"plan": "GOLD"}, "rest") == ["gold"]  # strings: any case
    assert texts(responses, {"plan": "silver"}, "rest") == ["any"]
    assert texts(responses, {}, None) == ["any"]
    only_slack = RasaResponses({"utter_plan": [PLAN[2]]})
    assert only_slack.render("utter_plan", {}, {}, "rest") is None  # Rasa utters nothing


def test_placeholders_come_from_slots_then_arguments() -> None:
    responses = RasaResponses({"utter_x": [{"text": "{name} {plan} {unknown} {n}", "id": "a"}]})
    body = responses.render("utter_x", {"name": "Ada", "plan": "gold", "n": 2}, {"plan": "x"}, "")
    assert body is not None and body["text"] == "Ada x {unknown} 2"


def test_one_variation_at_random_with_everything_but_how_it_was_chosen() -> None:
    variations = [{"text": f"v{i}", "id": f"id{i}", "custom": {"i": i}} for i in range(5)]
    picked = [
        RasaResponses({"utter_x": variations}, random.Random(seed)).render("utter_x", {}, {}, None)
        for seed in range(40)
    ]
    assert {body["text"] for body in picked if body} == {f"v{i}" for i in range(5)}
    seeded = [RasaResponses({"utter_x": variations}, random.Random(7)) for _ in range(2)]
    assert seeded[0].render("utter_x", {}, {}, None) == seeded[1].render("utter_x", {}, {}, None)
    # the variation Rasa 3.6+ picked (its id in the request) is the one answered
    for _ in range(10):
        assert seeded[0].render("utter_x", {}, {}, None, "id3") == {
            "text": "v3",
            "id": "id3",
            "custom": {"i": 3},
            "buttons": [],
            "image": None,
            "elements": [],
            "attachments": [],
        }
    conditional = {"text": "c", "condition": GOLD, "channel": "rest"}
    assert "condition" not in RasaResponses({"utter_x": [conditional]}).render(
        "utter_x", {"plan": "gold"}, {}, "rest"
    )


def test_a_directory_of_domain_files(tmp_path: Path) -> None:
    (tmp_path / "responses").mkdir()
    (tmp_path / "a.yml").write_text("responses:\n  utter_a: [{text: A}]\n")
    (tmp_path / "responses" / "b.yaml").write_text(
        "responses:\n  utter_b: [{text: B}]\n  utter_a: [{text: later}]\n"
    )
    (tmp_path / "nlu.yml").write_text("nlu:\n  - intent: greet\n    examples: '- hi'\n")
    (tmp_path / "empty.yml").write_text("")
    (tmp_path / "notes.txt").write_text("responses: [not, read]")
    responses = RasaResponses.from_path(tmp_path)
    assert set(responses.responses) == {"utter_a", "utter_b"}
    assert responses.render("utter_a", {}, {}, None)["text"] == "A"  # first in path order
    assert Settings.load(data_dir=tmp_path, rasa_domain=tmp_path).rasa_domain == tmp_path


def test_the_setting_comes_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    domain = tmp_path / "domain.yml"
    domain.write_text(DOMAIN)
    monkeypatch.setenv("TAILORBOT_RASA_DOMAIN", str(domain))
    settings = Settings.load(data_dir=tmp_path)
    assert settings.rasa_domain == domain
    assert settings.to_env()["TAILORBOT_RASA_DOMAIN"] == str(domain)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "no such file or directory"),
        ("responses: {utter_x: [", "not valid YAML at line 2"),
        ("- a list", "a Rasa domain is a mapping, not a list"),
        ("responses: [utter_x]", "responses must map each name to a list of variations"),
        ("responses:\n  utter_x: hello", "responses.utter_x: expected a list of variations"),
        ("responses:\n  utter_x: [{text: [1]}]", "utter_x[0]: text must be a string"),
        ("responses:\n  utter_x: [{text: a, channel: [1]}]", "channel must be a string"),
        (
            "responses:\n  utter_x: [{text: a, condition: [{name: plan}]}]",
            "utter_x[0]: condition must be a list of {type: slot, name, value}",
        ),
    ],
)
def test_a_bad_domain_is_one_line_naming_the_setting(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    domain = tmp_path / "domain.yml"
    if content is not None:
        domain.write_text(content)
    with pytest.raises(ValidationError) as caught:
        Settings.load(data_dir=tmp_path, rasa_domain=domain)
    [error] = caught.value.errors()
    assert error["loc"] == ("rasa_domain",)
    assert str(domain) in error["msg"] and reason in error["msg"] and "\n" not in error["msg"]


def test_a_directory_without_yaml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "domain").mkdir()
    with pytest.raises(ValidationError, match="rasa_domain(.|\n)*without .yml or .yaml files"):
        Settings.load(data_dir=tmp_path, rasa_domain=tmp_path / "domain")


# --- through the NLG route -----------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    """A server whose Rasa domain is DOMAIN; the file is gone once the app started (it is
    read at start, not per request)."""
    save_model(tmp_path)
    domain = tmp_path / "domain.yml"
    domain.write_text(DOMAIN)
    with make_client(tmp_path, seed=SEED, bandit_sync_s=0.0, rasa_domain=domain) as client:
        domain.unlink()
        yield client


def card_question(response: str) -> dict:
    """Rasa's request for ``response`` after the customer asked about a card."""
    request = rasa_nlg_request(response=response)
    request["tracker"]["latest_message"]["text"] = "my new card has still not arrived"
    return request


def decision_of(client: TestClient, user_id: str = "user_0") -> dict:
    messages = wait_until(
        lambda: [e for e in logged_events(client, user_id) if e["type"] == "message"],
        "the message event in the log",
    )
    return written_decision(client, messages[-1]["metadata"]["decision_id"])


def test_a_domain_response_is_the_domains_own_and_records_no_decision(api: TestClient) -> None:
    request = card_question("utter_ask_email")
    request["tracker"]["slots"] = {"first_name": "Ada", "case": "slot"}
    request["arguments"] = {"case": "C-7"}
    response = api.post(NLG, json=request)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "text": "Your e-mail address, Ada? (case C-7)",
        "buttons": [{"title": "Skip", "payload": "/deny"}],
        "image": "https://example.com/mail.png",
        "elements": [],
        "attachments": [],
        "custom": {},
    }
    plan = card_question("utter_plan")
    plan["tracker"]["slots"] = {"plan": "gold"}
    assert api.post(NLG, json=plan).json()["text"] == "Gold plan!"
    plan["channel"] = {"name": "slack"}
    assert api.post(NLG, json=plan).json()["custom"] == {"blocks": []}
    # a personalized answer after them: its decision and message are the only ones
    assert api.post(NLG, json=card_question("utter_card_arrival")).status_code == 200
    assert decision_of(api)["template_id"] == "tpl-card-arrival"
    decisions = list(api.app.state.runtime.stores.decisions.scan())
    assert len(decisions) == 1
    assert len([e for e in logged_events(api, "user_0") if e["type"] == "message"]) == 1


def test_the_kb_words_its_responses_before_the_domain(api: TestClient) -> None:
    variants = dict.fromkeys(("concise", "step_by_step", "empathetic"), "Hi from {brand}")
    template = {"intents": [], "variants": variants}
    assert api.put("/v1/kb/templates/utter_greet", json=template).status_code == 200
    greet = api.post(NLG, json=card_question("utter_greet"))
    assert greet.json()["text"] == "Hi from Tailor Bank"  # (a) the template named like it
    bye = api.post(NLG, json=card_question("utter_goodbye"))
    assert bye.status_code == 200 and bye.json()["text"] != "Bye from the domain"
    assert decision_of(api)["template_id"] == "tpl-goodbye"  # (b) utter_<intent>


def test_a_response_in_neither_the_kb_nor_the_domain_is_a_404(api: TestClient) -> None:
    response = api.post(NLG, json=card_question("utter_not_in_the_domain"))
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "not_found" and "utter_not_in_the_domain" in body["message"]
    assert body["problems"][0]["field"] == "response"


@pytest.fixture
def no_domain_api(tmp_path: Path, monkeypatch) -> Iterator[TestClient]:
    monkeypatch.setattr(nlg, "_warned", threading.Event())  # as in a fresh process
    save_model(tmp_path)
    with make_client(tmp_path, seed=SEED, bandit_sync_s=0.0) as client:
        yield client


def test_utter_intent_gets_that_intents_template(no_domain_api: TestClient) -> None:
    # the customer asked about a card; the bot says goodbye: the goodbye template, not the card's
    response = no_domain_api.post(NLG, json=card_question("utter_goodbye"))
    assert response.status_code == 200, response.text
    assert decision_of(no_domain_api)["template_id"] == "tpl-goodbye"


def test_without_a_domain_the_intent_answers_with_one_warning(
    no_domain_api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=nlg.__name__):
        for name in ("utter_ask_email", "utter_ask_phone"):
            assert no_domain_api.post(NLG, json=card_question(name)).status_code == 200
    assert decision_of(no_domain_api)["template_id"] == "tpl-card-arrival"  # as before
    warnings = [r.getMessage() for r in caplog.records if r.name == nlg.__name__]
    assert len(warnings) == 1
    assert "utter_ask_email" in warnings[0] and "TAILORBOT_RASA_DOMAIN" in warnings[0]
