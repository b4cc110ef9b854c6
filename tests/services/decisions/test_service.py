"""DecisionService: personalize and feedback over a real runtime (SQLite log and store)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from tailorbot.errors import NotFound, PayloadTooLarge, Unavailable
from tailorbot.events.codec import decode_event
from tailorbot.events.profile import Consent, UserProfile
from tailorbot.kb.model import VARIANTS
from tailorbot.models import registry
from tailorbot.runtime import Runtime
from tailorbot.services.decisions import DecisionService
from tailorbot.services.decisions.schemas import (
    FeedbackRequest,
    PersonalizeRequest,
    PersonalizeResponse,
)
from tests.api.support import wait_until
from tests.helpers import bandit_updates, packed_statistics
from tests.services.decisions.conftest import (
    CARD_MESSAGE,
    OUT_OF_SCOPE_MESSAGES,
    ask,
    runtime_of,
    tell,
)

SIMILAR_CARD_MESSAGE = "where is my card? it has not arrived yet"


def logged_events(runtime: Runtime) -> list[dict[str, Any]]:
    """Every event of the log, decoded, in partition and offset order."""
    return [
        decode_event(record.value)
        for partition in range(runtime.settings.partitions)
        for record in runtime.log.read_all(partition)
    ]


def events_of(runtime: Runtime, decision_id: str) -> list[dict[str, Any]]:
    return [e for e in logged_events(runtime) if e["metadata"].get("decision_id") == decision_id]


def caught_up(runtime: Runtime) -> bool:
    return not any(runtime.log.lag(runtime.settings.consumer_group).values())


def features_of(runtime: Runtime, user_id: str) -> dict[str, Any] | None:
    try:
        return runtime.users.features(user_id)["features"]
    except NotFound:
        return None


# --- personalize ----------------------------------------------------------------------------


def test_personalize_answers_with_intent_articles_and_a_variant(
    service: DecisionService, data_dir: Path
) -> None:
    answer = ask(service, "u1", CARD_MESSAGE)

    assert answer.intent.name == "card_arrival"
    ranking = [r.confidence for r in answer.intent.ranking]
    assert len(ranking) == 5
    assert ranking == sorted(ranking, reverse=True)
    assert answer.intent.ranking[0].name == answer.intent.name
    assert 0.0 < sum(ranking) <= 1.0 + 1e-9
    assert not answer.fallback.triggered and answer.fallback.reason is None

    assert answer.articles, "an in-scope message gets articles"
    assert len(answer.articles) <= runtime_of(service).settings.recommendations
    scores = [a.score for a in answer.articles]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    assert all(a.reasons for a in answer.articles)
    assert answer.articles[0].id == "kb-card-arrival"
    assert any("card_arrival" in reason for reason in answer.articles[0].reasons)

    response = answer.response
    assert response.template_id == "tpl-card-arrival"
    assert response.variant in VARIANTS
    assert 0.0 < response.propensity <= 1.0
    assert response.text.strip() and "{" not in response.text

    assert answer.user.consent and answer.user.personalized
    assert answer.experiment_arm == "personalized"
    assert answer.model_versions["intent"] == registry.latest(data_dir).version
    assert answer.model_versions["bandit"] == service.models.policy.namespace
    assert {"intent", "features", "recommend", "response", "record", "total"} <= set(
        answer.timings_ms
    )

    stored = runtime_of(service).stores.decisions.get(answer.decision_id)
    assert stored is not None
    assert stored["variant"] == response.variant
    assert stored["propensity"] == response.propensity
    assert stored["articles"] == [a.id for a in answer.articles]
    assert stored["arm"] == "personalized" and stored["personalized"] is True
    assert stored["context"], "a consenting user's decision keeps the context it was made in"


@pytest.mark.parametrize(
    "message", [CARD_MESSAGE, SIMILAR_CARD_MESSAGE, OUT_OF_SCOPE_MESSAGES[0], "hi", "yes"]
)
def test_the_lean_routes_plain_answer_is_the_response_models_json(
    service: DecisionService, message: str
) -> None:
    # The lean route writes personalize_payload as it is: it must be exactly what the
    # response model would have written (keys, nesting, types), answered or fallen back.
    request = PersonalizeRequest(user_id="u-json", session_id="s1", message=message)
    payload = service.personalize_payload(request)
    assert PersonalizeResponse.model_validate(payload).model_dump(mode="json") == payload
    assert orjson.loads(orjson.dumps(payload)) == payload


def test_the_reply_is_rendered_with_the_users_profile(service: DecisionService) -> None:
    runtime_of(service).users.put_profile("ada", UserProfile(name="Ada Lovelace", tier="gold"))
    answer = ask(service, "ada", CARD_MESSAGE)
    assert "Ada Lovelace" in answer.response.text
    assert answer.user.segment is not None


def test_the_message_is_logged_redacted_with_its_intent(service: DecisionService) -> None:
    email = "jo.doe@example.com"
    answer = ask(service, "u2", f"my card has not arrived, write to {email}", session_id="s9")

    (event,) = events_of(runtime_of(service), answer.decision_id)
    assert event["type"] == "message" and event["role"] == "customer"
    assert event["user_id"] == "u2" and event["session_id"] == "s9"
    assert event["intent"] == answer.intent.name == "card_arrival"
    assert event["confidence"] == pytest.approx(answer.intent.confidence, abs=1e-6)
    assert email not in event["text"]
    assert "<EMAIL>" in event["text"]
    assert all(email not in str(e) for e in logged_events(runtime_of(service)))


def test_the_users_intent_features_fill(live_service: DecisionService) -> None:
    runtime = runtime_of(live_service)
    first = ask(live_service, "u3", CARD_MESSAGE)
    second = ask(live_service, "u3", "my top up failed again")
    assert second.intent.name == "top_up_failed"

    def both_intents() -> dict[str, Any] | None:
        view = features_of(runtime, "u3")
        wanted = {first.intent.name, second.intent.name}
        return view if view and wanted <= set(view["recent_intents"]) else None

    view = wait_until(both_intents, "the personalize messages in the user's features")
    assert view["recent_intents"] == ["card_arrival", "top_up_failed"]  # oldest first
    assert view["customer_messages_total"] == 2


def test_too_long_a_message_is_refused_before_anything_is_stored(
    service: DecisionService,
) -> None:
    limit = runtime_of(service).settings.max_text_chars
    with pytest.raises(PayloadTooLarge) as caught:
        ask(service, "u4", "card " * limit)
    assert caught.value.problems[0].field == "message"
    assert str(limit) in caught.value.message
    assert logged_events(runtime_of(service)) == []


# --- fallback -------------------------------------------------------------------------------


def test_out_of_scope_messages_fall_back_without_articles(service: DecisionService) -> None:
    for message in OUT_OF_SCOPE_MESSAGES:
        answer = ask(service, "u5", message)
        assert answer.intent.name == "out_of_scope", message
        assert answer.fallback.triggered and answer.fallback.reason == "out_of_scope"
        assert answer.articles == []
        assert runtime_of(service).stores.decisions.get(answer.decision_id)["articles"] == []
        # The hand-over wording, not an intent's reply promising an article.
        assert answer.response.template_id == "fallback"
        assert "help article" not in answer.response.text


def test_an_unfamiliar_message_falls_back_without_articles(service: DecisionService) -> None:
    """A message far from every training message (the similarity floor) is handed over like
    an out-of-scope one, whatever intent the classifier ranked first."""
    from dataclasses import replace

    from tailorbot.models.intent.base import FallbackDecision

    live = service._live
    old = live.current

    class Unfamiliar:
        def predict_one(self, text: str) -> Any:
            return replace(
                old.intent.predict_one(text), fallback=FallbackDecision(True, "unfamiliar")
            )

    live.current = replace(old, intent=Unfamiliar())
    answer = ask(service, "u-far", CARD_MESSAGE)
    assert answer.intent.name == "card_arrival" and answer.fallback.reason == "unfamiliar"
    assert answer.articles == [] and answer.response.template_id == "fallback"


# --- feedback -------------------------------------------------------------------------------


def test_feedback_teaches_the_bandit_and_is_logged(service: DecisionService) -> None:
    store = runtime_of(service).stores.counters
    answer = ask(service, "u6", CARD_MESSAGE)
    offered = answer.articles[0].id
    assert store.vectors(service.models.policy.namespace) == {}

    result = tell(
        service,
        answer.decision_id,
        rating=5,
        resolved=True,
        helpful_article_id=offered,
        clicked_article_id=offered,
    )
    assert result.applied and result.reward == pytest.approx(1.0)

    namespace = service.models.policy.namespace
    assert bandit_updates(store, namespace) == {answer.response.variant: 1.0}
    # The bias term (the last of b, after the count) times the reward: it grows by 1.0.
    bias = len(service.models.policy.bandit.features)
    packed = store.vectors(namespace)[f"arm/{answer.response.variant}"]
    assert packed[1 + bias] == pytest.approx(1.0)

    kinds = Counter(e["type"] for e in events_of(runtime_of(service), answer.decision_id))
    assert kinds == {
        "message": 1,
        "rating": 1,
        "resolution": 1,
        "article_feedback": 1,
        "article_viewed": 1,
    }
    (resolution,) = [
        e for e in events_of(runtime_of(service), answer.decision_id) if e["type"] == "resolution"
    ]
    assert resolution["resolved"] is True and resolution["article_id"] == offered


def test_repeated_feedback_changes_nothing(service: DecisionService) -> None:
    store, log = runtime_of(service).stores.counters, runtime_of(service).log
    answer = ask(service, "u7", CARD_MESSAGE)
    assert tell(service, answer.decision_id, rating=2).applied
    statistics = packed_statistics(store, service.models.policy.namespace)
    assert statistics, "the first rating taught the bandit"
    experiment = store.counters(service.experiment.namespace)
    ends = log.end_offsets()

    again = tell(service, answer.decision_id, rating=2)  # a retry
    assert not again.applied and again.reward is None
    assert log.end_offsets() == ends
    later = tell(service, answer.decision_id, rating=5, resolved=True)
    assert not later.applied and later.reward is None
    assert packed_statistics(store, service.models.policy.namespace) == statistics
    # the first rating stands; the resolution, a kind the decision had not had, is logged and
    # counted in the readout's resolution rate (nothing else of the readout moves)
    moved = {
        k: v - experiment.get(k, 0.0)
        for k, v in store.counters(service.experiment.namespace).items()
        if v != experiment.get(k, 0.0)
    }
    assert sorted(k.rsplit("/", 1)[1] for k in moved) == ["resolved_n", "resolved_sum"]
    assert set(moved.values()) == {1.0}
    assert tell(service, answer.decision_id, resolved=False).applied is False
    assert len(store.counters(service.experiment.namespace)) == len(experiment) + 2
    logged = [e for e in events_of(runtime_of(service), answer.decision_id)]
    assert [(e["type"], e.get("score", e.get("resolved"))) for e in logged[1:]] == [
        ("rating", 2),
        ("resolution", True),
    ]


def test_a_rating_after_the_decisions_outcome_is_logged_not_learned(
    service: DecisionService,
) -> None:
    """A click on an offered article is the decision's outcome; the customer's rating that
    follows teaches the bandit nothing more, but reaches the log (CSAT figures read it)."""
    answer = ask(service, "u7b", CARD_MESSAGE)
    click = tell(service, answer.decision_id, clicked_article_id=answer.articles[0].id)
    assert click.applied and click.reward == 1.0
    rating = tell(service, answer.decision_id, rating=4)
    assert not rating.applied
    logged = [e["type"] for e in events_of(runtime_of(service), answer.decision_id)]
    assert logged == ["message", "article_viewed", "rating"]
    # The readout's CSAT is every decision's rating, whichever signal came first; once.
    assert tell(service, answer.decision_id, rating=1).applied is False
    arm = service.experiment_report().arms[answer.experiment_arm]
    assert (arm.feedback, arm.csat.n, arm.csat.mean) == (1, 1, 4.0)
    assert service.stores.decisions.get(answer.decision_id)["feedback"]["rating"] == 4


def test_a_rating_racing_the_click_still_counts_once_in_the_readout(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rating read the decision before the click's outcome was written: it loses the
    first-outcome write and counts as a later signal, in the store, the readout and the
    archive alike."""
    answer = ask(service, "u7c", CARD_MESSAGE)
    stale = service.stores.decisions.get(answer.decision_id)
    assert tell(service, answer.decision_id, clicked_article_id=answer.articles[0].id).applied
    handler = service._feedback
    monkeypatch.setattr(handler, "_read", lambda decision_ids: {answer.decision_id: stale})
    archived: list[dict[str, Any]] = []
    monkeypatch.setattr(handler, "archive", SimpleNamespace(put=lambda k, r: archived.append(r)))
    assert tell(service, answer.decision_id, rating=4).applied is False
    arm = service.experiment_report().arms[answer.experiment_arm]
    assert (arm.feedback, arm.csat.n, arm.csat.mean) == (1, 1, 4.0)
    mark = service.stores.decisions.get(answer.decision_id)["feedback"]
    assert mark["rating"] == 4 and mark["reward"] == 1.0
    assert [(r["rating"], r["reward"]) for r in archived] == [(4, 1.0)]
    monkeypatch.undo()
    assert tell(service, answer.decision_id, rating=2).applied is False  # the rating stands
    assert service.experiment_report().arms[answer.experiment_arm].csat.mean == 4.0


def test_a_reply_without_a_message_is_decided_in_its_channel(service: DecisionService) -> None:
    decided = service.respond("u-greet", "s1", None, channel="email")
    context = service.stores.decisions.get(decided["decision_id"])["context"]
    assert (context["channel_email"], context["channel_chat"]) == (1.0, 0.0)


def test_a_click_elsewhere_leaves_the_decisions_feedback_for_its_outcome(
    service: DecisionService,
) -> None:
    runtime = runtime_of(service)
    answer = ask(service, "u8", CARD_MESSAGE)
    offered = {a.id for a in answer.articles}
    elsewhere = next(a.id for a in service.models.composer.kb.articles if a.id not in offered)
    click = tell(service, answer.decision_id, clicked_article_id=elsewhere)
    assert not click.applied and click.reward is None  # no outcome: nothing applied
    logged = [e["type"] for e in events_of(runtime, answer.decision_id)]
    assert logged == ["message", "article_viewed"]
    # a vote on an article it did not offer says nothing of the decision either
    vote = tell(service, answer.decision_id, helpful_article_id=elsewhere)
    assert not vote.applied and vote.reward is None
    # the click on an offered article is an event of its own, not a retry of the first click
    click = tell(service, answer.decision_id, clicked_article_id=answer.articles[0].id, rating=5)
    assert click.applied and click.reward == 1.0  # the outcome still counts
    viewed = [
        e["article_id"]
        for e in events_of(runtime, answer.decision_id)
        if e["type"] == "article_viewed"
    ]
    assert viewed == [elsewhere, answer.articles[0].id]
    assert len({e["event_id"] for e in events_of(runtime, answer.decision_id)}) == 5


def test_feedback_for_an_unknown_or_erased_decision_is_not_found(
    service: DecisionService,
) -> None:
    with pytest.raises(NotFound, match="no decision 'nope'"):
        tell(service, "nope", rating=3)
    answer = ask(service, "u8", CARD_MESSAGE)
    runtime_of(service).users.erase_user("u8")
    with pytest.raises(NotFound):
        tell(service, answer.decision_id, rating=3)


REWARDS = [  # (feedback signals, the reward they are worth)
    ({"resolved": True, "rating": 2}, (0.5 * 1 + 0.4 * 0.25) / 0.9),
    ({"rating": 1, "clicked_article_id": "offered"}, 0.1 / 0.5),
    ({"rating": 5, "clicked_article_id": "not-offered"}, 1.0),  # says nothing of ours
    ({"rating": 5, "unhelpful_article_id": "offered"}, 0.4 / 0.5),
    ({"resolved": False, "helpful_article_id": "offered"}, 0.1 / 0.6),
    ({"rating": 5, "helpful_article_id": "not-offered"}, 1.0),  # says nothing of ours
    ({"rating": 1, "unhelpful_article_id": "not-offered"}, 0.0),
]  # no signal at all is a 422 (tests/api), a click elsewhere alone applies nothing (below)


def test_the_reward_weighs_the_signals_that_arrived(service: DecisionService) -> None:
    for signals, reward in REWARDS:
        answer = ask(service, "u9", CARD_MESSAGE)
        offered = answer.articles[0].id
        # a knowledge-base article this decision did not offer (unknown ones are a 422)
        other = next(
            a.id
            for a in service.models.composer.kb.articles
            if a.id not in {o.id for o in answer.articles}
        )
        picks = {"offered": offered, "not-offered": other}
        request = {k: picks.get(v, v) if isinstance(v, str) else v for k, v in signals.items()}
        counters = runtime_of(service).stores.counters
        before = packed_statistics(counters, service.models.policy.namespace)
        result = service.feedback(FeedbackRequest(decision_id=answer.decision_id, **request))
        assert result.applied, signals
        assert result.reward == pytest.approx(reward), signals
        assert packed_statistics(counters, service.models.policy.namespace) != before, signals


def test_articles_marked_unhelpful_are_not_offered_again(live_service: DecisionService) -> None:
    runtime = runtime_of(live_service)
    first = ask(live_service, "u10", CARD_MESSAGE)
    unhelpful = first.articles[0].id
    tell(live_service, first.decision_id, unhelpful_article_id=unhelpful, rating=1)

    wait_until(
        lambda: unhelpful in (features_of(runtime, "u10") or {}).get("articles_unhelpful", []),
        "the unhelpful vote in the user's features",
    )
    again = ask(live_service, "u10", SIMILAR_CARD_MESSAGE)
    assert again.intent.name == first.intent.name
    assert again.articles, "other articles still answer the question"
    assert unhelpful not in [a.id for a in again.articles]
    # Another customer asking the same still gets it: the rule is per user.
    assert unhelpful in [a.id for a in ask(live_service, "u11", SIMILAR_CARD_MESSAGE).articles]


# --- consent --------------------------------------------------------------------------------


def test_without_consent_no_feature_record_is_used(live_service: DecisionService) -> None:
    runtime = runtime_of(live_service)
    first = ask(live_service, "u12", CARD_MESSAGE)
    unhelpful = first.articles[0].id
    tell(live_service, first.decision_id, unhelpful_article_id=unhelpful)
    wait_until(
        lambda: unhelpful in (features_of(runtime, "u12") or {}).get("articles_unhelpful", []),
        "the unhelpful vote in the user's features",
    )
    assert unhelpful not in [a.id for a in ask(live_service, "u12", CARD_MESSAGE).articles]

    runtime.users.put_profile("u12", UserProfile(consent=Consent(personalization=False)))
    answer = ask(live_service, "u12", CARD_MESSAGE)
    assert answer.user.consent is False and answer.user.personalized is False
    assert answer.user.segment is None
    # The user's history (the unhelpful vote) is not consulted: the article is back.
    assert unhelpful in [a.id for a in answer.articles]
    stored = runtime.stores.decisions.get(answer.decision_id)
    assert stored["context"] == {} and stored["personalized"] is False

    # The message is still logged, but no feature record is built from it.
    wait_until(lambda: caught_up(runtime), "the worker to catch up")
    assert runtime.stores.features.get("u12") is None


# --- learning -------------------------------------------------------------------------------


@pytest.mark.parametrize("bandit", ["linucb", "thompson"])
def test_the_bandit_converges_to_the_best_variant(make_service: Any, bandit: str) -> None:
    """Simulated customers rate "concise" 5 and every other variant 1."""
    _, service = make_service(bandit=bandit)
    messages = (CARD_MESSAGE, "my top up failed", "I lost my card", "how do I change my pin")
    chosen = []
    for i in range(240):
        answer = ask(service, f"sim{i % 12}", messages[i % len(messages)])
        variant = answer.response.variant
        chosen.append(variant)
        tell(service, answer.decision_id, rating=5 if variant == "concise" else 1)
    assert set(chosen[:40]) == set(VARIANTS), "every variant is tried early on"
    share = chosen[-100:].count("concise") / 100
    assert share >= 0.8, f"concise chosen {share:.0%} of the last 100 decisions"
    counters = runtime_of(service).stores.counters
    assert sum(bandit_updates(counters, service.models.policy.namespace).values()) == 240


def test_servers_sharing_a_store_learn_as_one(make_service: Any) -> None:
    """Two services over one data directory (two server processes): feedback through one
    teaches the other, through the store's shared counters."""
    _, teacher = make_service()
    _, learner = make_service()
    for i in range(60):
        answer = ask(teacher, f"t{i % 6}", CARD_MESSAGE)
        variant = answer.response.variant
        tell(teacher, answer.decision_id, rating=5 if variant == "empathetic" else 1)
    picks = [ask(learner, f"l{i}", CARD_MESSAGE).response for i in range(40)]
    assert sum(p.variant == "empathetic" for p in picks) >= 32
    assert learner.models.policy.bandit.n_updates("empathetic") > 0


def test_feedback_refused_by_the_log_can_be_retried(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feedback whose events the log refuses (503) records nothing, so the retry applies."""
    answer = ask(service, "u9", CARD_MESSAGE)
    ingestion = runtime_of(service).ingestion

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise Unavailable("log down (injected)")

    monkeypatch.setattr(ingestion, "append_accepted", refuse)
    with pytest.raises(Unavailable):
        tell(service, answer.decision_id, rating=4, resolved=True)
    assert runtime_of(service).stores.counters.counters(service.experiment.namespace) == {}
    assert runtime_of(service).stores.decisions.get(answer.decision_id).get("feedback") is None
    monkeypatch.undo()
    assert tell(service, answer.decision_id, rating=4, resolved=True).applied
    kinds = Counter(
        decode_event(r.value)["type"]
        for p in range(runtime_of(service).log.num_partitions)
        for r in runtime_of(service).log.read_all(p)
        if decode_event(r.value)["user_id"] == "u9"
    )
    assert kinds["rating"] == 1 and kinds["resolution"] == 1


def test_each_customer_is_answered_in_the_variant_their_own_history_prefers(
    make_service: Any,
) -> None:
    """Two customers with the same profile and the same generic features: one rates
    step-by-step answers 5 and the rest 1, the other empathetic ones. Only their own memory
    (features/memory.py, via the action features) tells them apart."""
    runtime, service = make_service(worker=True, bandit_alpha=0.2)
    likes = {f"steps{i}": "step_by_step" for i in range(4)}
    likes.update({f"warm{i}": "empathetic" for i in range(4)})
    late: dict[str, list[str]] = {user: [] for user in likes}
    for round_ in range(30):
        for user, liked in likes.items():
            answer = ask(service, user, CARD_MESSAGE)
            if round_ >= 20:
                late[user].append(answer.response.variant)
            tell(service, answer.decision_id, rating=5 if answer.response.variant == liked else 1)
        wait_until(lambda: caught_up(runtime), "the worker to catch up")
    memory = features_of(runtime, "steps0")["variant_rewards"]
    assert memory["step_by_step"]["mean"] == 1.0
    for user, liked in likes.items():
        share = late[user].count(liked) / len(late[user])
        assert share >= 0.7, f"{user} got {liked} in {share:.0%} of the last 10 answers"


def test_a_templates_own_variants_are_the_arms(make_service: Any, tmp_path: Any) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "kb.yaml").write_text(
        """
articles:
  - id: kb-card
    title: Where is my card?
    body: Cards arrive in a week.
    intents: [card_arrival]
templates:
  - id: t-card
    intents: [card_arrival]
    variants:
      short: "See {article_title}."
      bullet_points: "- {article_title}"
      formal: "Dear customer."
  - id: t-default
    default: true
    variants: {plain: "See {article_title}."}
"""
    )
    _, service = make_service(kb_dir=str(kb))
    seen = {ask(service, f"u{i}", CARD_MESSAGE).response.variant for i in range(60)}
    assert seen == {"short", "bullet_points", "formal"}
    other = ask(service, "u-other", "how do I change my pin")
    assert other.response.variant == "plain" and other.response.propensity == 1.0


def test_a_newly_trained_cf_model_is_served_without_a_restart(make_service: Any) -> None:
    from tailorbot.events.codec import now_iso
    from tailorbot.models.recommend.cf_training import save_cf
    from tailorbot.models.recommend.item_knn import ItemKNN

    runtime, service = make_service(worker=True)
    viewed = {
        "type": "article_viewed",
        "event_id": "v1",
        "user_id": "cf-user",
        "session_id": "s0",
        "timestamp": now_iso(),
        "article_id": "kb-atm-support",
    }
    service.events.ingest([viewed])
    wait_until(lambda: caught_up(runtime), "the worker to catch up")
    before = ask(service, "cf-user", CARD_MESSAGE)
    assert not any("also used it" in r for a in before.articles for r in a.reasons)

    pairs = [(f"u{i}", a, 1.0) for i in range(30) for a in ("kb-atm-support", "kb-pin-blocked")]
    save_cf(runtime.settings.data_dir, ItemKNN().fit(pairs), {"events": 60})
    service.models.recommenders.refresh()  # what the background refresh runs every second
    assert service.models.recommenders.cf_version is not None
    after = ask(service, "cf-user", "my pin is blocked")
    reasons = {a.id: a.reasons for a in after.articles}
    assert any("also used it" in r for r in reasons.get("kb-pin-blocked", [])), reasons
    # a new live KB version keeps serving the CF model, and keeps polling for newer ones
    service.use_kb(service.models.composer.kb, "kb-edited")
    assert service.models.recommenders.cf_version is not None
    assert service.models.recommenders.data_dir == runtime.settings.data_dir


def test_a_decision_uses_one_model_set_across_a_swap_mid_request(
    service: DecisionService,
) -> None:
    from dataclasses import replace

    from tailorbot.kb.model import KnowledgeBase

    live = service._live  # where a live KB or a promotion swaps the set
    old = live.current
    articleless = KnowledgeBase(templates=old.composer.kb.templates)

    class SwapsWhilePredicting:
        """The intent model's call is where a concurrent swap lands in this request."""

        def predict_one(self, text: str) -> Any:
            service.use_kb(articleless, "kb-swapped")
            return old.intent.predict_one(text)

    live.current = replace(old, intent=SwapsWhilePredicting())
    answer = ask(service, "u-swap", CARD_MESSAGE)
    # the request's set: the old KB's articles and its version, not a mix of the two
    assert answer.model_versions.get("kb") == old.versions.get("kb")
    assert [a.id for a in answer.articles][:1] == ["kb-card-arrival"]
    assert answer.response.text.strip()
    assert service.models.versions["kb"] == "kb-swapped"  # the swap itself happened
    assert ask(service, "u-swap2", CARD_MESSAGE).articles == []  # and the next request sees it
