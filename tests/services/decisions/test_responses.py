from __future__ import annotations

from typing import Any

from tailorbot.events.codec import decode_event
from tailorbot.kb import default_kb_dir, load_kb
from tailorbot.kb.model import KnowledgeBase, ResponseTemplate, Variants
from tailorbot.models.recommend.base import Recommendation
from tailorbot.services.decisions.responses import ResponseComposer
from tests.services.decisions.conftest import ask, runtime_of, tell

KB = load_kb(default_kb_dir())
COMPOSER = ResponseComposer(KB)


def offered(*ids: str) -> list[Recommendation]:
    return [Recommendation(i, KB.article(i).title, 1.0, [], {}) for i in ids]  # type: ignore[union-attr]


def test_the_reply_names_the_article_its_template_is_written_around() -> None:
    template = next(t for t in KB.templates if t.article == "kb-card-payment-fee")
    articles = offered("kb-charged-twice", "kb-card-payment-fee")
    about = COMPOSER.reply_article(template, "card_payment_fee_charged", articles)
    assert about.article_id == "kb-card-payment-fee"
    text = COMPOSER.render(template, "concise", None, None, None, articles, about)
    assert KB.article("kb-card-payment-fee").title in text  # type: ignore[union-attr]


def test_without_a_template_article_the_first_one_serving_the_intent_is_named() -> None:
    template = KB.default_template
    assert template is not None and template.article is None
    articles = offered("kb-charged-twice", "kb-card-arrival")
    about = COMPOSER.reply_article(template, "card_arrival", articles)
    assert about.article_id == "kb-card-arrival"
    assert COMPOSER.reply_article(template, None, articles).article_id == "kb-charged-twice"
    assert COMPOSER.reply_article(template, "card_arrival", []) is None


def test_a_misspelled_card_question_is_not_answered_with_the_charged_twice_article(
    service: Any,
) -> None:
    answer = ask(service, "u-typo", "my crad hasnt arived yet")
    charged_twice = KB.article("kb-charged-twice").title  # type: ignore[union-attr]
    assert charged_twice not in answer.response.text
    assert "kb-charged-twice" not in [a.id for a in answer.articles]
    record = runtime_of(service).stores.decisions.get(answer.decision_id)
    named = record["reply_article"]
    template = KB.template(answer.response.template_id)
    variant_text = template.variants.text(answer.response.variant)  # type: ignore[union-attr]
    if named is not None:  # the article the reply is about is on topic, and named if the
        # chosen variant names an article at all (some step-by-step variants do not)
        assert answer.intent.name in KB.article(named).intents  # type: ignore[union-attr]
        if "{article_title}" in variant_text:
            assert KB.article(named).title in answer.response.text  # type: ignore[union-attr]


def test_the_feedback_events_credit_the_variant_and_the_reply_article(service: Any) -> None:
    answer = ask(service, "u-credit", "my new card has still not arrived, where is it?")
    tell(service, answer.decision_id, rating=4, resolved=True)
    runtime = runtime_of(service)
    events = [
        decode_event(record.value)
        for partition in range(runtime.log.num_partitions)
        for record in runtime.log.read_all(partition)
    ]
    feedback = [e for e in events if e["type"] in ("rating", "resolution")]
    record = runtime.stores.decisions.get(answer.decision_id)
    assert len(feedback) == 2 and record["reply_article"] is not None
    for event in feedback:
        assert event["metadata"] == {
            "decision_id": answer.decision_id,
            "variant": answer.response.variant,
            "article": record["reply_article"],
            "arm": record["arm"],
        }


def test_the_product_is_the_request_s_else_the_profile_s_first() -> None:
    variants = Variants(concise="About your {product}.", empathetic="x", step_by_step="y")
    template = ResponseTemplate(id="t-product", default=True, variants=variants)
    composer = ResponseComposer(KnowledgeBase([], [template]))
    profile = {"products": ["savings account", "card"]}
    assert composer.render(template, "concise", None, profile, "card", []) == "About your card."
    for unnamed in (None, ""):  # not named by the request: the profile's first
        text = composer.render(template, "concise", None, profile, unnamed, [])
        assert text == "About your savings account."
    neutral = composer.render(template, "concise", None, None, None, [])
    assert neutral == composer.render(template, "concise", None, {"products": []}, "", [])
    assert "{product}" not in neutral
