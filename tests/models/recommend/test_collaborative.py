from __future__ import annotations

import random
import statistics
import sys
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.compiled import native
from tailorbot.models.recommend.collaborative import (
    ALL,
    NAMESPACES,
    NS_COOC,
    NS_INTENT,
    NS_SEGMENT_INTENT,
    ArticleEvidence,
    CollaborativeStats,
    GroupRate,
    deltas_for_event,
)
from tailorbot.store import open_stores

GOLD = {"tier": "gold", "segment": "vip", "recent_intents": ["card_arrival"]}
STANDARD = {"tier": "standard", "segment": "regular", "recent_intents": ["card_arrival"]}


def resolution(article: str | None, resolved: bool = True) -> dict:
    return {"type": "resolution", "resolved": resolved, "article_id": article}


def feedback(article: str, helpful: bool) -> dict:
    return {"type": "article_feedback", "article_id": article, "helpful": helpful}


def random_event(rng: random.Random, articles: list[str]) -> dict:
    """A resolution, a vote or a view of one of ``articles``, drawn from ``rng``."""
    article = rng.choice(articles)
    return rng.choice(
        [
            resolution(article, rng.random() < 0.6),
            feedback(article, rng.random() < 0.7),
            {"type": "article_viewed", "article_id": article},
        ]
    )


def test_deltas_of_a_resolution_count_the_issue_per_intent_and_group() -> None:
    deltas = deltas_for_event(resolution("kb-a"), GOLD)
    assert deltas[NS_INTENT] == {"card_arrival|issues": 1.0, "card_arrival|kb-a|res": 1.0}
    assert deltas[NS_SEGMENT_INTENT] == {
        "tier=gold|card_arrival|issues": 1.0,
        "tier=gold|card_arrival|kb-a|res": 1.0,
        "segment=vip|card_arrival|issues": 1.0,
        "segment=vip|card_arrival|kb-a|res": 1.0,
    }
    assert deltas[NS_COOC] == {"kb-a": 1.0}
    unresolved = deltas_for_event(resolution("kb-a", resolved=False), GOLD)
    assert unresolved[NS_INTENT] == {"card_arrival|issues": 1.0}
    assert NS_COOC not in unresolved


def test_events_without_article_signal_give_no_deltas() -> None:
    assert deltas_for_event({"type": "rating", "score": 5}, GOLD) == {}
    assert deltas_for_event({"type": "message", "text": "hi"}, GOLD) == {}
    assert deltas_for_event({"type": "article_viewed"}, GOLD) == {}


def test_separator_inside_a_value_cannot_forge_keys() -> None:
    view = {"tier": "go|ld", "recent_intents": ["a|b"]}
    deltas = deltas_for_event(resolution("kb-a"), view)
    assert "tier=go/ld|a/b|kb-a|res" in deltas[NS_SEGMENT_INTENT]
    stats = CollaborativeStats().learn_one(resolution("kb-a"), view)
    assert stats.resolution_rate("a/b", "kb-a", [("tier", "go/ld")]).hits == 1.0


def test_group_rate_is_smoothed_towards_all_customers() -> None:
    stats = CollaborativeStats(prior_strength=2.0)
    for _ in range(6):
        stats.learn_one(resolution("kb-gold"), GOLD)
    for _ in range(6):
        stats.learn_one(resolution("kb-std"), STANDARD)
    gold = [("tier", "gold")]
    good = stats.resolution_rate("card_arrival", "kb-gold", gold)
    other = stats.resolution_rate("card_arrival", "kb-std", gold)
    assert good.hits == 6 and good.trials == 6 and good.group == ("tier", "gold")
    assert good.rate > other.rate > 0.0  # the other one is known to work for someone
    # overall 6/12 shrunk to 6/14; gold: (6 + 2 * 6/14) / 8
    assert good.rate == pytest.approx((6 + 2 * 6 / 14) / 8)
    assert stats.resolution_rate("card_arrival", "kb-none", gold).rate == 0.0


def test_helpfulness_counts_votes_per_reader() -> None:
    stats = CollaborativeStats(prior_strength=1.0)
    for _ in range(3):
        stats.learn_one({"type": "article_viewed", "article_id": "kb-a"}, GOLD)
        stats.learn_one({"type": "article_viewed", "article_id": "kb-b"}, GOLD)
    stats.learn_one(feedback("kb-a", True), GOLD)
    stats.learn_one(feedback("kb-a", True), GOLD)
    stats.learn_one(feedback("kb-b", False), GOLD)
    assert stats.helpfulness("card_arrival", "kb-a", []).rate == pytest.approx(2 / 4)
    assert stats.helpfulness("card_arrival", "kb-b", []).rate == pytest.approx(-1 / 4)
    assert stats.helpfulness("card_arrival", "kb-a", [("tier", "gold")]).hits == 2


def _expected_evidence(
    counters: dict[str, dict[str, float]], m: float, article: str, groups: list[tuple[str, str]]
) -> tuple[GroupRate, GroupRate]:
    """The documented rules worked out from the raw counters, one group rate at a time."""

    def smoothed(hits: float, trials: float, prior: float, group: tuple[str, str]) -> GroupRate:
        return GroupRate((hits + m * prior) / (trials + m), group, hits, trials)

    def summary(overall: GroupRate, rates: list[GroupRate]) -> GroupRate:
        if not rates:
            return overall
        shown = overall
        for rate in rates:  # the first of the best, among the groups with evidence
            if rate.hits and (
                shown is overall or (rate.rate, rate.trials) > (shown.rate, shown.trials)
            ):
                shown = rate
        mean = statistics.fmean(r.rate for r in rates)
        return GroupRate(mean, shown.group, shown.hits, shown.trials)

    def rates(namespace: str, prefix: str, priors: tuple[float, float], group: tuple[str, str]):
        raw = counters[namespace]
        res, up, down, view = (raw.get(f"{prefix}|{article}|{k}", 0.0) for k in KINDS)
        issues = raw.get(f"{prefix}|issues", 0.0)
        return (
            smoothed(res, issues, priors[0], group),
            smoothed(up - down, max(view, up + down), priors[1], group),
        )

    overall, votes = rates(NS_INTENT, "i", (0.0, 0.0), ALL)
    by_group = [
        rates(NS_SEGMENT_INTENT, f"{kind}={value}|i", (overall.rate, votes.rate), (kind, value))
        for kind, value in groups
    ]
    return summary(overall, [r for r, _ in by_group]), summary(votes, [v for _, v in by_group])


KINDS = ("res", "up", "down", "view")
_GROUPS = [("tier", "gold"), ("tier", "standard"), ("segment", "vip")]
_KEYS = ["issues", *(f"kb-a|{k}" for k in KINDS), *(f"kb-b|{k}" for k in KINDS)]
_PREFIXES = ["", *(f"{kind}={value}|" for kind, value in _GROUPS)]  # "": all customers


@settings(max_examples=150, deadline=None)
@given(
    counts=st.dictionaries(
        st.tuples(st.sampled_from(_PREFIXES), st.sampled_from(_KEYS)),
        st.sampled_from([0.0, 1.0, 2.0, 3.0, 7.0]),
    ),
    groups=st.lists(st.sampled_from(_GROUPS), max_size=3, unique=True),
    m=st.sampled_from([0.5, 2.0, 5.0]),
)
def test_evidence_follows_the_documented_rules(
    counts: dict[tuple[str, str], float], groups: list[tuple[str, str]], m: float
) -> None:
    counters: dict[str, dict[str, float]] = {NS_INTENT: {}, NS_SEGMENT_INTENT: {}, NS_COOC: {}}
    for (group, key), value in counts.items():
        counters[NS_SEGMENT_INTENT if group else NS_INTENT][f"{group}i|{key}"] = value
    stats = CollaborativeStats.from_counters(counters, prior_strength=m)
    found = stats.evidence("i", groups)
    for article in ("kb-a", "kb-b"):
        for got, expected in zip(
            (stats.resolution_rate("i", article, groups), stats.helpfulness("i", article, groups)),
            _expected_evidence(counters, m, article, groups),
            strict=True,
        ):
            assert got.rate == pytest.approx(expected.rate, rel=1e-12, abs=1e-15)
            assert got[1:] == expected[1:]  # the evidence shown: group, hits, trials
        if article in found:  # else counted nowhere under the intent
            assert found[article] == (
                stats.resolution_rate("i", article, groups),
                stats.helpfulness("i", article, groups),
            )
        else:
            assert stats.resolution_rate("i", article, groups).rate == 0.0


def test_evidence_shown_is_the_best_groups_and_the_first_of_equals() -> None:
    groups = [("tier", "gold"), ("segment", "vip")]
    same = {"i|issues": 4.0, "i|kb-a|res": 2.0, "tier=gold|i|issues": 2.0,
            "tier=gold|i|kb-a|res": 1.0, "segment=vip|i|issues": 2.0,
            "segment=vip|i|kb-a|res": 1.0}  # fmt: skip
    stats = CollaborativeStats.from_counters({NS_INTENT: same, NS_SEGMENT_INTENT: same}, 1.0)
    assert stats.resolution_rate("i", "kb-a", groups).group == ("tier", "gold")
    assert stats.resolution_rate("i", "kb-a", groups[::-1]).group == ("segment", "vip")
    # Equal rates (1/2 = 2/4, all customers' rate 0): the one from more trials is shown.
    equal = {"tier=gold|i|issues": 1.0, "tier=gold|i|kb-a|res": 1.0,
             "tier=gold|i|kb-a|up": 1.0, "segment=vip|i|issues": 3.0,
             "segment=vip|i|kb-a|res": 2.0, "segment=vip|i|kb-a|up": 2.0,
             "segment=vip|i|kb-a|view": 3.0}  # fmt: skip
    stats = CollaborativeStats.from_counters({NS_INTENT: {}, NS_SEGMENT_INTENT: equal}, 1.0)
    for order in (groups, groups[::-1]):
        assert stats.resolution_rate("i", "kb-a", order) == (0.5, ("segment", "vip"), 2.0, 3.0)
        assert stats.helpfulness("i", "kb-a", order) == (0.5, ("segment", "vip"), 2.0, 3.0)
    # No group with evidence: all customers' evidence, the groups' mean rate (2/5 / 4).
    stats = CollaborativeStats.from_counters(
        {NS_INTENT: {"i|issues": 4.0, "i|kb-a|res": 2.0},
         NS_SEGMENT_INTENT: {"tier=gold|i|issues": 3.0}},
        1.0,
    )  # fmt: skip
    assert stats.resolution_rate("i", "kb-a", [("tier", "gold")]) == (0.1, ALL, 2.0, 4.0)


def test_cooccurrence_links_articles_that_helped_the_same_customer() -> None:
    stats = CollaborativeStats()
    for _ in range(4):
        first = {**GOLD, "articles_helpful": []}
        stats.learn_one(feedback("kb-a", True), first)
        stats.learn_one(feedback("kb-b", True), {**GOLD, "articles_helpful": ["kb-a"]})
    stats.learn_one(feedback("kb-c", True), GOLD)
    score, partner = stats.cooccurrence("kb-b", {"kb-a"})
    assert partner == "kb-a" and score == pytest.approx(4 / (4 + 1))
    assert stats.cooccurrence("kb-c", {"kb-a"}) == (0.0, None)
    # An article that already helped the user is not counted again.
    again = deltas_for_event(feedback("kb-a", True), {**GOLD, "articles_helpful": ["kb-a"]})
    assert NS_COOC not in again


def test_popularity_is_relative_to_the_groups_most_helpful_article() -> None:
    stats = CollaborativeStats(prior_strength=1.0)
    for _ in range(3):
        stats.learn_one(resolution("kb-a"), GOLD)
    stats.learn_one(resolution("kb-b"), STANDARD)
    assert stats.popularity("kb-a", [("tier", "gold")]) == pytest.approx(3 / 4)
    assert stats.popularity("kb-b", [("tier", "gold")]) == 0.0
    assert stats.popularity("kb-b", []) == pytest.approx(1 / 4)


def test_store_counters_round_trip_gives_the_same_statistics() -> None:
    learned = CollaborativeStats()
    events = [
        (resolution("kb-a"), GOLD),
        (feedback("kb-b", True), {**STANDARD, "articles_helpful": ["kb-c"]}),
        (resolution("kb-a", resolved=False), STANDARD),
    ]
    summed: dict[str, dict[str, float]] = {ns: {} for ns in NAMESPACES}
    for event, view in events:
        learned.learn_one(event, view)
        for ns, items in deltas_for_event(event, view).items():
            for key, value in items.items():
                summed[ns][key] = summed[ns].get(key, 0.0) + value
    rebuilt = CollaborativeStats.from_counters(summed)
    assert rebuilt.to_counters() == learned.to_counters()
    gold = [("tier", "gold")]
    assert rebuilt.resolution_rate("card_arrival", "kb-a", gold) == learned.resolution_rate(
        "card_arrival", "kb-a", gold
    )
    assert rebuilt.cooccurrence("kb-b", {"kb-c"}) == learned.cooccurrence("kb-b", {"kb-c"})


def test_the_online_store_path_holds_the_same_numbers(tmp_path) -> None:
    stores = open_stores(f"sqlite:///{tmp_path}/store.db")
    learned = CollaborativeStats()
    events = [
        (resolution("kb-a"), GOLD),
        (feedback("kb-b", True), {**GOLD, "articles_helpful": ["kb-a"]}),
        (feedback("kb-a", False), STANDARD),
        (resolution(None), STANDARD),
    ]
    for event, view in events:
        learned.learn_one(event, view)
        for namespace, deltas in deltas_for_event(event, view).items():
            stores.counters.increment(namespace, deltas)
    loaded = CollaborativeStats.load(stores.counters)
    stores.close()
    assert loaded.to_counters() == learned.to_counters()
    gold = [("tier", "gold"), ("segment", "vip")]
    assert loaded.evidence("card_arrival", gold) == learned.evidence("card_arrival", gold)
    assert loaded.cooccurrence("kb-b", {"kb-a"})[1] == "kb-a"


def test_remembered_answers_follow_every_update() -> None:
    # evidence(), popularity_map() and cooccurrence_map() are remembered per argument: an
    # update must drop them, or a served answer would be stale.
    stats = CollaborativeStats()
    gold = [("tier", "gold"), ("segment", "vip")]
    stats.learn_one(resolution("kb-a"), GOLD)
    helped = {**GOLD, "articles_helpful": ["kb-a"]}
    first = (
        dict(stats.evidence("card_arrival", gold)),
        dict(stats.popularity_map(gold)),
        dict(stats.cooccurrence_map({"kb-a"})),
    )
    assert stats.evidence("card_arrival", gold) is stats.evidence("card_arrival", iter(gold))
    stats.learn_one(resolution("kb-b"), helped)
    fresh = CollaborativeStats.from_counters(stats.to_counters())
    again = (
        stats.evidence("card_arrival", gold),
        stats.popularity_map(gold),
        stats.cooccurrence_map({"kb-a"}),
    )
    assert again != first
    assert again == (
        fresh.evidence("card_arrival", gold),
        fresh.popularity_map(gold),
        fresh.cooccurrence_map({"kb-a"}),
    )
    assert "kb-b" in again[0] and "kb-b" in again[1] and again[2]["kb-b"][1] == "kb-a"


def test_remembered_answers_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tailorbot.models.recommend.collaborative.MEMO_MAX", 3)
    stats = CollaborativeStats(prior_strength=1.0).learn_one(resolution("kb-a"), GOLD)
    for tier in ("gold", "silver", "bronze", "iron", "gold"):
        expected = {"kb-a": 1.0 / 2.0} if tier == "gold" else {}
        assert stats.popularity_map([("tier", tier)]) == expected
        assert len(stats._memo) <= 3
    helped = CollaborativeStats().learn_one(
        resolution("kb-b"), {**GOLD, "articles_helpful": ["kb-a"]}
    )
    for basket in ({"kb-a"}, {"kb-c"}, {"kb-d"}, {"kb-e"}, {"kb-a"}):  # the baskets' own memo
        expected_links = {"kb-b": helped.cooccurrence("kb-b", {"kb-a"})} if "kb-a" in basket else {}
        assert helped.cooccurrence_map(basket) == expected_links
        assert len(helped._links) <= 3


def test_a_rebuild_keeps_only_the_answers_whose_counters_did_not_change() -> None:
    # A server rebuilds its statistics every second while feedback comes in
    # (SharedRecommenders.refresh): the answers of the intents and groups no new event
    # touched are carried over, every other one is computed again, and each equals the
    # answer of statistics built afresh from the same counters.
    rng = random.Random(3)
    intents = ["card_arrival", "change_pin", "top_up_failed", "lost_card"]
    articles = [f"kb-{n}" for n in range(8)]
    views = [
        {"tier": t, "segment": s, "recent_intents": [i],
         "articles_helpful": rng.sample(articles, 2)}
        for t in ("gold", "standard") for s in ("vip", "regular", "at_risk") for i in intents
    ]  # fmt: skip

    def event() -> dict:
        return random_event(rng, articles)

    stats = CollaborativeStats()
    for _ in range(300):
        stats.learn_one(event(), rng.choice(views))
    keys = [(i, [("tier", t), ("segment", s)]) for i in intents
            for t in ("gold", "standard") for s in ("vip", "regular", "at_risk")]  # fmt: skip
    keys.append(("card_arrival", []))
    groups = [g for _, g in keys]
    for _ in range(20):
        served = CollaborativeStats.from_counters(stats.to_counters())
        for intent, group in keys:
            served.evidence(intent, group)
            served.popularity_map(group)
        before = {k: served._memo[k] for k in served._memo}
        for _ in range(rng.choice([0, 1, 3])):  # a second's new events, some quiet
            stats.learn_one(event(), rng.choice(views))
        counters = stats.to_counters()
        rebuilt = CollaborativeStats.from_counters(counters, previous=served)
        fresh = CollaborativeStats.from_counters(counters)
        kept = set(rebuilt._memo)
        for intent, group in keys:
            assert rebuilt.evidence(intent, group) == fresh.evidence(intent, group)
        for group in groups:
            assert rebuilt.popularity_map(group) == fresh.popularity_map(group)
        for key in kept:  # carried over, as they were
            assert rebuilt._memo[key] is before[key]
        if counters == served.to_counters():
            assert kept == set(before)
        else:
            assert kept < set(before)  # what the new events touched was dropped
    assert (
        CollaborativeStats.from_counters(
            stats.to_counters(), prior_strength=2.0, previous=served
        )._memo
        == {}
    )  # other smoothing: nothing carried


def test_customers_baskets_do_not_push_out_the_shared_answers() -> None:
    from tailorbot.models.recommend.collaborative import MEMO_MAX

    stats = CollaborativeStats()
    stats.learn_one(resolution("kb-a"), {**GOLD, "articles_helpful": ["kb-b"]})
    gold = [("tier", "gold"), ("segment", "vip")]
    shared = stats.evidence("card_arrival", gold)
    for n in range(MEMO_MAX + 10):  # a basket per customer
        stats.cooccurrence_map({"kb-a", f"kb-{n}"})
    assert stats.evidence("card_arrival", gold) is shared
    assert stats.cooccurrence_map({"kb-b"}) == {"kb-a": stats.cooccurrence("kb-a", {"kb-b"})}


def test_statistics_grown_second_by_second_equal_a_fresh_build_and_leave_the_served_alone() -> None:
    """A server's rebuild adds what the counters grew by to the statistics it served,
    sharing what did not change: generation after generation, every structure equals a
    build from scratch, and no earlier generation (still read by decisions) changes."""
    import copy

    rng = random.Random(11)
    intents = ["card_arrival", "change_pin", "top_up_failed"]
    articles = [f"kb-{n}" for n in range(10)]
    views = [
        {"tier": t, "segment": s, "recent_intents": [i],
         "articles_helpful": rng.sample(articles, 3), "articles_resolved": [articles[0]]}
        for t in ("gold", "standard") for s in ("vip", "regular") for i in intents
    ]  # fmt: skip

    def event() -> dict:
        return random_event(rng, articles)

    names = ("_raw", "_issues", "_articles", "_popular", "_popular_max", "_helped", "_pairs")

    def parts(stats: CollaborativeStats) -> dict:
        return {name: getattr(stats, name) for name in names}

    truth = CollaborativeStats()
    for _ in range(200):
        truth.learn_one(event(), rng.choice(views))
    served = CollaborativeStats.from_counters(truth.to_counters())
    generations = [(served, copy.deepcopy(parts(served)))]
    for _ in range(25):
        for _ in range(rng.choice([1, 2, 5])):
            truth.learn_one(event(), rng.choice(views))
        counters = truth.to_counters()
        grown = CollaborativeStats.from_counters(counters, previous=served)
        assert grown._owned is not None, "grown, not built from scratch"
        assert parts(grown) == parts(CollaborativeStats.from_counters(counters))
        for basket in (articles[:2], articles[3:6], [articles[9]]):
            assert grown.cooccurrence_map(basket) == truth.cooccurrence_map(basket)
        for older, snapshot in generations:
            assert parts(older) == snapshot, "a served generation changed"
        generations.append((grown, copy.deepcopy(parts(grown))))
        served = grown
    same = CollaborativeStats.from_counters(served.to_counters(), previous=served)
    assert same is served, "the very counters it holds: the served statistics themselves"
    grew = served.to_counters()
    issues = grew[NS_INTENT].get("card_arrival|issues", 0.0)
    grew[NS_INTENT]["card_arrival|issues"] = issues + 1.0  # one counter of one (group, intent)
    one_more = CollaborativeStats.from_counters(grew, previous=served)
    assert one_more._articles is not served._articles
    assert all(one_more._articles[key] is entry for key, entry in served._articles.items()), (
        "what no counter touched is shared, not copied"
    )
    assert one_more._issues[ALL, "card_arrival"] == issues + 1.0
    # a counter that fell or went missing (a store reset): built from scratch
    for change in ("fell", "missing"):
        fell = served.to_counters()
        key = next(k for k in fell[NS_INTENT] if k.endswith("|res"))
        if change == "fell":
            fell[NS_INTENT][key] -= 1.0
        else:
            del fell[NS_INTENT][key]
        rebuilt = CollaborativeStats.from_counters(fell, previous=served)
        assert rebuilt._owned is None, change
        assert parts(rebuilt) == parts(CollaborativeStats.from_counters(fell)), change


# --- an intent's evidence in one compiled call (csrc/evidence.c) --------------------------

_COUNT = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 3.0, -1.0, 0.5]),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


def _compiled_evidence() -> Any:
    found = getattr(native(), "intent_evidence", None)
    if found is None:
        pytest.skip("the extension is not built here (required under CI: test_native.py)")
    return found


@settings(max_examples=300, deadline=None)
@given(
    tables=st.lists(
        st.tuples(
            _COUNT.filter(lambda v: v >= 0.0),
            st.dictionaries(
                st.sampled_from(["kb-a", "kb-b", "kb-c", "kb-é"]),
                st.dictionaries(st.sampled_from(["res", "up", "down", "view", "other"]), _COUNT),
            ),
        ),
        min_size=1,
        max_size=4,
    ),
    m=st.sampled_from([0.5, 2.0, 5.0, 1e-9, 3]),
    as_default=st.booleans(),
)
def test_compiled_evidence_is_the_python_one(
    tables: list[tuple[float, dict[str, dict[str, float]]]], m: float, as_default: bool
) -> None:
    compiled = _compiled_evidence()
    stats = CollaborativeStats(prior_strength=m)
    groups = [ALL, ("tier", "gold"), ("segment", "vip"), ("tier", "standard")]
    entries = [
        (
            groups[k],
            issues,
            defaultdict(lambda: defaultdict(float), table) if as_default else table,
        )
        for k, (issues, table) in enumerate(tables)
    ]
    articles = sorted(set().union(*(table for _, _, table in entries)))
    try:
        expected = stats.evidence_in_python(entries, articles)
    except ZeroDivisionError:  # the compiled call leaves it to Python, which raises it
        assert compiled(entries, articles, m, GroupRate, ArticleEvidence, ALL) is None
        return
    found = compiled(entries, articles, m, GroupRate, ArticleEvidence, ALL)
    assert found == expected
    assert list(found) == list(expected)
    assert all(type(e) is ArticleEvidence and type(e[0]) is GroupRate for e in found.values())
    # equal tuples hash equal (Python 3.14 keeps a tuple's hash: one built in C must too)
    assert [hash(e) for e in found.values()] == [hash(e) for e in expected.values()]


@pytest.mark.parametrize(
    "odd",
    [
        {"res": 1},  # an int count
        {"res": float("nan")},
        {"up": float("inf")},
        {"res": True},
    ],
)
def test_counts_the_counters_never_hold_are_left_to_python(odd: dict[str, Any]) -> None:
    compiled = _compiled_evidence()
    entries = [(ALL, 3.0, {"kb-a": {"res": 1.0}, "kb-b": odd})]
    assert compiled(entries, ["kb-a", "kb-b"], 5.0, GroupRate, ArticleEvidence, ALL) is None
    ints = [(ALL, 3, {"kb-a": {"res": 1.0}})]  # an int issue count
    assert compiled(ints, ["kb-a"], 5.0, GroupRate, ArticleEvidence, ALL) is None
    stats = CollaborativeStats.from_counters(
        {NS_INTENT: {"i|issues": 3.0, "i|kb-a|res": 1.0}, NS_SEGMENT_INTENT: {}, NS_COOC: {}}
    )
    assert stats.evidence("i", []) == stats.evidence_in_python(stats._entries("i", []), ["kb-a"])


def test_compiled_evidence_holds_no_reference_it_does_not_own() -> None:
    compiled = _compiled_evidence()
    gold = ("tier", "gold")
    counts = {"res": 2.0, "up": 1.0}
    entries = [(ALL, 4.0, {"kb-a": counts}), (gold, 2.0, {"kb-a": {"res": 1.0}})]
    before = [sys.getrefcount(o) for o in (gold, counts, ALL, entries[0][2])]
    for _ in range(50):
        found = compiled(entries, ["kb-a"], 5.0, GroupRate, ArticleEvidence, ALL)
    assert found["kb-a"].resolution.group is gold
    del found
    assert [sys.getrefcount(o) for o in (gold, counts, ALL, entries[0][2])] == before
