from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.compiled import native
from tailorbot.kb import default_kb_dir, load_kb
from tailorbot.kb.model import Article, Audience, KnowledgeBase
from tailorbot.models.intent import bundled_dataset
from tailorbot.models.recommend import hybrid as hybrid_module
from tailorbot.models.recommend import text as text_module
from tailorbot.models.recommend.base import UserContext
from tailorbot.models.recommend.collaborative import CollaborativeStats
from tailorbot.models.recommend.evidence import Evidence
from tailorbot.models.recommend.hybrid import DEFAULT_WEIGHTS, TEXT_CANDIDATES, HybridRecommender
from tailorbot.models.recommend.reasons import ReasonWriter

KB = KnowledgeBase(
    [
        Article(
            id="kb-card-arrival",
            title="Where is my new card?",
            body="A new card arrives within 5 working days. Track the delivery in the app.",
            intents=["card_arrival"],
            tags=["card", "delivery"],
        ),
        Article(
            id="kb-card-delivery-express",
            title="Express card delivery",
            body="Gold customers can ask for express delivery of a card by courier.",
            intents=["card_arrival", "card_delivery_estimate"],
            tags=["card"],
        ),
        Article(
            id="kb-exchange-rate",
            title="Which exchange rate do you use?",
            body="We use the daily interbank exchange rate for every currency conversion.",
            intents=["exchange_rate"],
        ),
        Article(
            id="kb-vip-concierge",
            title="Your concierge line",
            body="VIP customers reach a personal concierge for card and delivery questions.",
            intents=["card_arrival"],
            audience=Audience(tiers=["vip"]),
        ),
        Article(
            id="kb-card-arrival-es",
            title="¿Dónde está mi tarjeta?",
            body="Su tarjeta nueva llega en 5 días hábiles.",
            intents=["card_arrival"],
            audience=Audience(languages=["es"]),
        ),
    ]
)
MESSAGE = "I ordered a card two weeks ago and it still has not arrived"


def view(**overrides: object) -> dict:
    base = {
        "personalization": True,
        "tier": "standard",
        "language": "en",
        "segment": "regular",
        "recent_intents": [],
        "articles_viewed": [],
        "articles_helpful": [],
        "articles_unhelpful": [],
        "articles_resolved": [],
        "articles_resolved_by_intent": {},
    }
    return {**base, **overrides}


def ids(recs: list) -> list[str]:
    return [r.article_id for r in recs]


def test_intent_matching_article_ranks_first_for_a_clear_message() -> None:
    recs = HybridRecommender(KB).recommend(view(), MESSAGE, "card_arrival", 0.93, k=3)
    assert recs[0].article_id == "kb-card-arrival"
    assert "matches intent card_arrival (0.93)" in recs[0].reasons
    assert any(r.startswith("your message mentions card") for r in recs[0].reasons)
    assert "kb-exchange-rate" not in ids(recs)
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    assert recs[0].signals["intent"] == pytest.approx(DEFAULT_WEIGHTS["intent"] * 0.93)


def test_text_alone_finds_the_article_when_the_intent_is_unknown() -> None:
    recs = HybridRecommender(KB).recommend(None, "what exchange rate for currency", None, 0.0)
    assert recs[0].article_id == "kb-exchange-rate"
    assert recs[0].reasons == ["your message mentions exchange, rate, currency"]


def test_an_article_marked_unhelpful_is_never_offered_again() -> None:
    recommender = HybridRecommender(KB, stats=CollaborativeStats())
    user = view(articles_unhelpful=["kb-card-arrival"], articles_helpful=["kb-card-arrival"])
    for k in (1, 3, 10):
        assert "kb-card-arrival" not in ids(
            recommender.recommend(user, MESSAGE, "card_arrival", 1.0, k)
        )
    # Others' resolutions cannot bring it back either.
    stats = recommender.stats
    for _ in range(20):
        stats.learn_one(
            {"type": "resolution", "resolved": True, "article_id": "kb-card-arrival"},
            view(recent_intents=["card_arrival"]),
        )
    assert "kb-card-arrival" not in ids(
        recommender.recommend(user, MESSAGE, "card_arrival", 1.0, 10)
    )


def test_audience_filters_tier_and_language() -> None:
    recommender = HybridRecommender(KB)
    standard = ids(recommender.recommend(view(), MESSAGE, "card_arrival", 0.9, k=10))
    assert "kb-vip-concierge" not in standard and "kb-card-arrival-es" not in standard
    vip = ids(recommender.recommend(view(tier="vip"), MESSAGE, "card_arrival", 0.9, k=10))
    assert "kb-vip-concierge" in vip
    spanish = ids(recommender.recommend(view(language="es"), "tarjeta", "card_arrival", 0.9, k=10))
    assert spanish[0] == "kb-card-arrival-es"
    # Explicit arguments override the view (the API's request context).
    assert "kb-vip-concierge" in ids(
        recommender.recommend(None, MESSAGE, "card_arrival", 0.9, k=10, tier="vip")
    )


def test_collaborative_signal_changes_the_ranking_after_feedback() -> None:
    stats = CollaborativeStats()
    recommender = HybridRecommender(KB, stats=stats)
    gold = view(tier="gold", segment="vip")
    before = recommender.recommend(gold, MESSAGE, "card_arrival", 0.9, k=2)
    assert before[0].article_id == "kb-card-arrival"
    # Gold customers' card_arrival issues get resolved by the express-delivery article.
    others = view(tier="gold", segment="vip", recent_intents=["card_arrival"])
    for _ in range(8):
        stats.learn_one(
            {"type": "article_viewed", "article_id": "kb-card-delivery-express"}, others
        )
        stats.learn_one(
            {"type": "article_feedback", "article_id": "kb-card-delivery-express", "helpful": True},
            others,
        )
        stats.learn_one(
            {"type": "resolution", "resolved": True, "article_id": "kb-card-delivery-express"},
            others,
        )
    after = recommender.recommend(gold, MESSAGE, "card_arrival", 0.9, k=2)
    assert after[0].article_id == "kb-card-delivery-express"
    assert (
        "resolved 100% (8 of 8) of similar gold customers' card_arrival issues" in after[0].reasons
    )
    assert any("found it helpful" in r for r in after[0].reasons)
    # The intent-only baseline ignores what others did.
    baseline = HybridRecommender.intent_only(KB)
    assert baseline.recommend(gold, MESSAGE, "card_arrival", 0.9)[0].article_id == "kb-card-arrival"


def test_own_history_boosts_what_resolved_the_same_issue_before() -> None:
    recommender = HybridRecommender(KB)
    user = view(
        articles_resolved_by_intent={"card_arrival": ["kb-card-delivery-express"]},
        articles_resolved=["kb-card-delivery-express"],
    )
    top = recommender.recommend(user, MESSAGE, "card_arrival", 0.9)[0]
    assert top.article_id == "kb-card-delivery-express"
    assert "it resolved your card_arrival issue before" in top.reasons
    helpful = view(articles_helpful=["kb-card-delivery-express"])
    plain = recommender.recommend(view(), MESSAGE, "card_arrival", 0.9)
    boosted = recommender.recommend(helpful, MESSAGE, "card_arrival", 0.9)
    express = next(r for r in boosted if r.article_id == "kb-card-delivery-express")
    assert "you found it helpful before" in express.reasons
    assert express.score > next(r.score for r in plain if r.article_id == express.article_id)
    # Without personalization consent the history is not used.
    anonymous = {**user, "personalization": False}
    assert recommender.recommend(anonymous, MESSAGE, "card_arrival", 0.9)[0].article_id == (
        "kb-card-arrival"
    )


def test_every_result_has_reasons_and_ties_break_by_id() -> None:
    twins = KnowledgeBase(
        [
            Article(id=f"kb-{name}", title="Same title", body="Same body.", intents=["x"])
            for name in ("b", "c", "a")
        ]
    )
    recs = HybridRecommender(twins).recommend(None, "same title", "x", 0.5, k=3)
    assert ids(recs) == ["kb-a", "kb-b", "kb-c"]
    assert all(r.reasons for r in recs)
    assert len({r.score for r in recs}) == 1


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown recommender weights"):
        HybridRecommender(KB, weights={"txt": 1.0})
    recommender = HybridRecommender(KB)
    with pytest.raises(ValueError, match="k must be"):
        recommender.recommend(None, MESSAGE, None, 0.0, k=0)
    with pytest.raises(ValueError, match="intent_confidence"):
        recommender.recommend(None, MESSAGE, "card_arrival", 1.5)


# --- text relevance needs real evidence (the bundled KB) ------------------------------------


@pytest.fixture(scope="module")
def bundled() -> HybridRecommender:
    from tailorbot.kb import default_kb_dir, load_kb

    return HybridRecommender(load_kb(default_kb_dir()))


@pytest.mark.parametrize("confidence", [0.3, 0.6, 0.9])
def test_a_filler_word_does_not_pick_the_article(
    bundled: HybridRecommender, confidence: float
) -> None:
    """'yet' is in the message and in "I was charged twice…": coincidence, not relevance."""
    recs = bundled.recommend(None, "my crad hasnt arived yet", "card_arrival", confidence)
    assert recs, "the intent's own articles are offered"
    for rec in recs:
        assert "card_arrival" in bundled.kb.article(rec.article_id).intents, rec
    assert all("yet" not in reason for rec in recs for reason in rec.reasons)


@pytest.mark.parametrize("intent", [None, "contactless_not_working"])
def test_asking_for_a_human_gets_no_article_because_of_want(
    bundled: HybridRecommender, intent: str | None
) -> None:
    recs = bundled.recommend(None, "I want to talk to a human", intent, 0.2)
    assert all(intent in bundled.kb.article(r.article_id).intents for r in recs)
    if intent is None:
        assert recs == []


def test_an_off_intent_article_with_real_evidence_is_still_offered(
    bundled: HybridRecommender,
) -> None:
    recs = bundled.recommend(
        None, "my card has not arrived and I was charged twice", "card_arrival", 0.3
    )
    assert "kb-charged-twice" in [r.article_id for r in recs]
    assert bundled.recommend(None, "refund", None, 0.0)[0].article_id == "kb-request-refund"


def test_replacing_the_statistics_serves_the_new_ones() -> None:
    # What the recommender derives from its statistics must follow a refresh (a new object).
    recommender = HybridRecommender(KB, stats=CollaborativeStats())
    gold = view(tier="gold", segment="vip")
    assert recommender.recommend(gold, MESSAGE, "card_arrival", 0.9)[0].article_id == (
        "kb-card-arrival"
    )
    refreshed = CollaborativeStats()
    others = view(tier="gold", segment="vip", recent_intents=["card_arrival"])
    for _ in range(8):
        refreshed.learn_one(
            {"type": "resolution", "resolved": True, "article_id": "kb-card-delivery-express"},
            others,
        )
    recommender.stats = refreshed
    best = recommender.recommend(gold, MESSAGE, "card_arrival", 0.9)[0]
    assert best.article_id == "kb-card-delivery-express"
    assert "segment_resolution_rate" in best.signals and "popularity" in best.signals


def test_the_text_candidates_are_the_best_matches_ties_in_index_order() -> None:
    # More relevant matches than TEXT_CANDIDATES, all scoring alike: the cut keeps the first
    # ones in the index's order (what sorting every match kept), not an arbitrary set.
    articles = [
        Article(id=f"kb-{i:02d}", title="card delivery", body="card delivery", intents=["x"])
        for i in range(TEXT_CANDIDATES + 5)
    ]
    recommender = HybridRecommender(KnowledgeBase(list(reversed(articles))))
    found = recommender.recommend(None, "card delivery", None, 0.0, k=TEXT_CANDIDATES + 5)
    kept = [f"kb-{i:02d}" for i in range(5, TEXT_CANDIDATES + 5)]  # reversed: first indexed
    assert sorted(r.article_id for r in found) == kept


@pytest.mark.parametrize("weights", [None, {"text": 0.0}])
def test_compiled_text_matching_ranks_the_bundled_kb_as_the_python_path(
    monkeypatch: pytest.MonkeyPatch, weights: dict[str, float] | None
) -> None:
    # BM25 and the shared-words rule in C (TermIndex) against their Python reference: the
    # same articles, scores, signals and reasons for every Banking77 test message, with and
    # without the true intent.
    if native() is None:
        pytest.skip("the extension is not built here (tests/test_native.py requires it in CI)")
    kb = load_kb(default_kb_dir())
    data = bundled_dataset("banking77", "test")
    cases = [(t, y) for t, y in zip(data.texts, data.labels, strict=True)][::3]
    compiled = HybridRecommender(kb, weights=weights)
    want = []
    with monkeypatch.context() as patch:
        patch.setattr(text_module, "native", lambda: None)
        reference = HybridRecommender(kb, weights=weights)
        for message, intent in cases:
            for guess in (intent, None):
                want.append(reference.recommend(None, message, guess, 0.8, k=5))
    got = [
        compiled.recommend(None, message, guess, 0.8, k=5)
        for message, intent in cases
        for guess in (intent, None)
    ]
    assert got == want
    assert any(len(r) > 1 for r in got)


def test_compiled_scoring_ranks_as_the_python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # The candidates' weighted signals and sums in C (score_articles) against the Python
    # loop: the same articles, scores, signals and reasons for users with and without
    # history, audiences that filter, every collaborative signal, and weights score_articles
    # leaves to Python (an int).
    if native() is None:
        pytest.skip("the extension is not built here (tests/test_native.py requires it in CI)")
    import random

    from tailorbot.models.recommend import reasons as reasons_module
    from tailorbot.models.recommend.item_knn import ItemKNN

    kb = load_kb(default_kb_dir())
    rng = random.Random(5)
    article_ids = [a.id for a in kb.articles]
    data = bundled_dataset("banking77", "test")
    cases = list(zip(data.texts, data.labels, strict=True))[::11]
    stats = CollaborativeStats()
    tiers, segments = ("standard", "gold", "vip"), ("regular", "vip", "at_risk")
    for _ in range(600):
        who = view(tier=rng.choice(tiers), segment=rng.choice(segments),
                   recent_intents=[rng.choice(cases)[1]])  # fmt: skip
        article = rng.choice(article_ids)
        event = rng.choice([
            {"type": "article_viewed", "article_id": article},
            {"type": "article_feedback", "article_id": article, "helpful": rng.random() < 0.7},
            {"type": "resolution", "resolved": rng.random() < 0.6, "article_id": article},
        ])  # fmt: skip
        stats.learn_one(event, {**who, "articles_helpful": rng.sample(article_ids, 2)})
    cf = ItemKNN(min_common=1).fit(
        (f"u{rng.randrange(40)}", rng.choice(article_ids), 1.0) for _ in range(800)
    )

    def user() -> dict | None:
        if rng.random() < 0.2:
            return None
        viewed, helpful, unhelpful, resolved = (rng.sample(article_ids, 3) for _ in range(4))
        if rng.random() < 0.3:  # nothing helped yet: no co-occurrence links (an empty proxy)
            helpful, resolved = [], []
        intent = rng.choice(cases)[1]
        return view(
            personalization=rng.random() < 0.9,
            tier=rng.choice(tiers), segment=rng.choice(segments),
            language=rng.choice(["en", "es"]),
            articles_viewed=viewed, articles_helpful=helpful,
            articles_unhelpful=unhelpful[:1], articles_resolved=resolved,
            articles_resolved_by_intent={intent: resolved[:2]},
        )  # fmt: skip

    calls = [
        (user(), message, rng.choice([intent, None]), rng.random()) for message, intent in cases
    ]
    floats = [np.float32(0.7), np.float64(0.3)] * 10  # multiplied as they are, by Python
    calls += [(user(), m, i, c) for (m, i), c in zip(cases[:20], floats, strict=True)]
    rankers = [
        HybridRecommender(kb, stats=stats, cf=cf),
        HybridRecommender.intent_only(kb),
        HybridRecommender(kb, weights={"popularity": 1}, stats=stats),  # an int: Python's
    ]
    sizes = [1, 3, 5, 200]  # the cut in C: one, the served three, more than are scored
    want = []
    with monkeypatch.context() as patch:
        patch.setattr(hybrid_module, "native", lambda: None)
        patch.setattr(reasons_module, "native", lambda: None)
        for ranker in rankers:
            want.append([ranker.recommend(*call, k=k) for call in calls for k in sizes])
    got = [[ranker.recommend(*call, k=k) for call in calls for k in sizes] for ranker in rankers]
    assert got == want
    signals = {name for ranked in got[0] for r in ranked for name in r.signals}
    assert signals == set(DEFAULT_WEIGHTS)  # every signal was scored at least once


def test_compiled_scoring_reads_none_as_absent_and_defers_what_it_does_not_know() -> None:
    loops = native()
    if loops is None:
        pytest.skip("the extension is not built here (tests/test_native.py requires it in CI)")
    article = KB.article("kb-card-arrival")
    weights = (1.0,) * 8

    def score(articles: dict, text: dict, evidence: tuple, confidence: object = 0.5) -> object:
        return loops.score_articles(
            {"kb-card-arrival", "kb-gone"}, articles, frozenset(), frozenset(KB.articles_by_id),
            None, None, text, set(text), KB.article_ids_by_intent["card_arrival"], confidence,
            None, evidence, weights, 3,
        )  # fmt: skip

    empty = ({}, {}, {}, {})
    # None is no value, as the Python loop's .get() and `is None` read it
    nones = ({"kb-card-arrival": None}, {}, {"kb-card-arrival": None}, {})
    found = score({"kb-card-arrival": article, "kb-gone": None}, {"kb-card-arrival": None}, nones)
    assert found == [(-0.5, "kb-card-arrival", article, {"intent": 0.5})]

    class Lookup(dict):  # a get() of its own: the Python loop calls it
        pass

    assert score(Lookup(kb=article), {}, empty) is None
    assert score({"kb-card-arrival": article}, Lookup(), empty) is None
    assert loops.score_articles(  # a set of its own kind: its `in` may be its own
        ["kb-card-arrival"], {"kb-card-arrival": article}, frozenset(), frozenset(), None,
        None, {}, set(), type("Ids", (frozenset,), {})({"kb-card-arrival"}), 0.5, None,
        empty, weights, 3,
    ) is None  # fmt: skip
    assert score({"kb-card-arrival": article}, {}, (Lookup(kb=None), {}, {}, {})) is None
    assert score({"kb-card-arrival": article}, {}, empty, confidence=np.float32(0.5)) is None


def test_compiled_scoring_keeps_the_best_k_ties_by_id() -> None:
    # The cut in C: the k best sums, then the lower id among equal sums, as the (-score, id)
    # tuples sort; an id that is not a str is left to Python's sort.
    loops = native()
    if loops is None:
        pytest.skip("the extension is not built here (tests/test_native.py requires it in CI)")
    articles = {a.id: a for a in KB.articles}
    ids = sorted(articles, reverse=True)  # handed over in no order the answer keeps
    text = {a: 0.25 for a in ids}
    text[ids[-1]] = text[ids[len(ids) // 2]] = 0.75  # two best, tied

    def top(k: int, candidates: object = ids) -> object:
        return loops.score_articles(
            candidates, articles, frozenset(), frozenset(articles), None, None, text,
            set(text), frozenset(), 0.0, None, ({}, {}, {}, {}), (1.0,) * 8, k,
        )  # fmt: skip

    tied_best = sorted([ids[-1], ids[len(ids) // 2]])
    rest = sorted(set(ids) - set(tied_best))
    assert [entry[1] for entry in top(len(ids))] == tied_best + rest
    assert [entry[:2] for entry in top(3)] == [
        (-0.75, tied_best[0]), (-0.75, tied_best[1]), (-0.25, rest[0])
    ]  # fmt: skip
    assert top(1)[0][3] == {"text": 0.75}
    assert top(5, []) == []

    class Id(str):
        pass

    odd = {"kb-odd": KB.article(ids[0])}
    assert loops.score_articles(  # the id is the candidate's, as the articles' keys are
        [Id("kb-odd")], odd, frozenset(), frozenset(odd), None, None, {"kb-odd": 1.0},
        {"kb-odd"}, frozenset(), 0.0, None, ({}, {}, {}, {}), (1.0,) * 8, 3,
    ) is None  # fmt: skip
    with pytest.raises(ValueError, match="k must be"):
        top(0)


def _words_one_by_one(message: str) -> list[tuple[str, str]]:
    """What message_words answered before it ran in C over cached answers: each piece
    stripped and stemmed in turn, kept the first time its word is seen."""
    seen: dict[str, str] = {}
    for piece in message.lower().replace("_", " ").split():
        word = piece.strip(".,!?;:'\"()[]")
        tokens = text_module.tokenize(word)
        if len(tokens) == 1 and word not in seen:
            seen[word] = tokens[0]
    return list(seen.items())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "card",
                "Card,",
                "cards",
                "(card)",
                "arrived",
                "arrival!",
                "the",
                "my",
                "not",
                "card's",
                "top_up",
                "top-up",
                "...",
                "'",
                "PIN?",
                "pin",
                "I'm",
                "2",
                "x9",
                "exchange_rate",
                "ça",
                "Straße",
                "\t",
                "\n",
                "  ",
            ]
        ),
        max_size=14,
    ).map(" ".join)
)
def test_the_message_words_are_those_read_one_by_one(message: str) -> None:
    want = _words_one_by_one(message)
    assert text_module.message_words(message) == want
    assert text_module.terms_and_words(message) == (text_module.terms_in_python(message), want)


def test_the_user_context_holds_each_field_of_the_view_where_its_name_says() -> None:
    view = {
        "personalization": True,
        "tier": "gold",
        "segment": "at_risk",
        "language": "de",
        "recent_intents": ["card_arrival", "exchange_rate"],
        "articles_viewed": ["a1"],
        "articles_helpful": ["a2"],
        "articles_unhelpful": ["a3"],
        "articles_resolved": ["a4"],
        "articles_resolved_by_intent": {"card_arrival": ["a4"]},
    }
    assert UserContext.from_view(view) == UserContext(
        personalized=True,
        tier="gold",
        segment="at_risk",
        language="de",
        session_intent="exchange_rate",
        viewed=frozenset({"a1"}),
        helpful=frozenset({"a2"}),
        unhelpful=frozenset({"a3"}),
        resolved=frozenset({"a4"}),
        resolved_by_intent={"card_arrival": ("a4",)},
    )
    assert type(UserContext.from_view(view)) is UserContext


def test_reasons_worded_once_follow_the_statistics_as_they_grow() -> None:
    """A recommender words an evidence object's numbers once and reuses the text while the
    statistics stand: every answer equals a fresh recommender's, as the statistics grow."""
    import random

    rng = random.Random(5)
    kb = load_kb(default_kb_dir())
    intents = sorted({i for a in kb.articles for i in a.intents})[:4]
    articles = [a.id for a in kb.articles if set(a.intents) & set(intents)]
    stats = CollaborativeStats()
    served = HybridRecommender(kb, stats=stats)
    customers = [
        view(tier=t, segment=s, recent_intents=[i], articles_helpful=rng.sample(articles, 2))
        for t in ("gold", "standard") for s in ("vip", "regular") for i in intents
    ]  # fmt: skip
    worded = 0
    for step in range(30):
        for _ in range(rng.choice([0, 3, 10])):
            article = rng.choice(articles)
            event = rng.choice([
                {"type": "resolution", "resolved": rng.random() < 0.6, "article_id": article},
                {"type": "article_feedback", "article_id": article, "helpful": rng.random() < 0.6},
            ])  # fmt: skip
            stats.learn_one(event, rng.choice(customers))
        for customer in rng.sample(customers, 4):
            intent = customer["recent_intents"][0]
            asked = ("my card and my transfer", intent, 0.8)
            answer = served.recommend(customer, *asked, k=3)
            fresh = HybridRecommender(kb, stats=stats).recommend(customer, *asked, k=3)
            assert [(r.article_id, r.reasons) for r in answer] == [
                (r.article_id, r.reasons) for r in fresh
            ], step
            worded = max(worded, len(served._writer._worded))
    assert worded > 0, "evidence was worded"
    # The same evidence again: the very texts worded before.
    shared = [
        (a, b)
        for customer in customers
        for asked in [("my card and my transfer", customer["recent_intents"][0], 0.8)]
        for x, y in zip(
            served.recommend(customer, *asked, k=3),
            served.recommend(customer, *asked, k=3),
            strict=True,
        )
        for a, b in zip(x.reasons, y.reasons, strict=True)
        if a.startswith("resolved ") or " found it " in a
    ]
    assert shared and all(a is b for a, b in shared)


def test_reasons_go_strongest_first_ties_in_the_signals_order() -> None:
    """Each signal that matters (its weighted value's size at least REASON_MIN, either
    sign) is worded; the strongest first, and equal ones in the signals' order."""
    writer = ReasonWriter(KB)
    user = UserContext.from_view(
        view(tier="gold", articles_resolved_by_intent={"card_arrival": ["kb-card-arrival"]})
    )
    words = text_module.message_words("my card has not arrived yet")
    links = {"kb-card-arrival": (0.4, "kb-exchange-rate")}
    evidence = Evidence(links=links)

    def reasons(weighted: dict[str, float]) -> list[str]:
        return writer.reasons(
            "kb-card-arrival", weighted, user, words, "card_arrival", 0.8, evidence, None, {}
        )

    mentions = "your message mentions card, arrived"
    intent = "matches intent card_arrival (0.80)"
    history = "it resolved your card_arrival issue before"
    partner = 'helped customers who also found "Which exchange rate do you use?" helpful'
    popular = "popular with similar gold customers"
    tied = {"text": 0.5, "intent": 0.5, "history": 0.5, "cooccurrence": 0.5, "popularity": 0.5}
    assert reasons(tied) == [mentions, intent, history, partner, popular]
    graded = {"text": 0.2, "intent": 0.9, "history": -0.6, "cooccurrence": 0.3, "popularity": 0.1}
    assert reasons(graded) == [intent, history, partner, mentions, popular]
    weak = {"text": 0.0999, "intent": float("nan"), "history": -0.05, "popularity": 0.1}
    assert reasons(weak) == [popular]
    # worded only where there is something to say: no shared word, no evidence, no model
    elsewhere = writer.reasons(
        "kb-exchange-rate", tied, user, words, "card_arrival", 0.8, evidence, None, {}
    )
    assert elsewhere == [intent, "you found it helpful before", popular]
    assert writer.reasons("kb-card-arrival", {"item_knn": 0.9}, user, words, None, 0.8,
                          evidence, None, {}) == []  # fmt: skip
