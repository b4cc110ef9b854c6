from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.kb.model import Article, KnowledgeBase
from tailorbot.log import open_log
from tailorbot.models.recommend import HybridRecommender
from tailorbot.models.recommend.cf_training import CFLoader, save_cf, train_from_log
from tailorbot.models.recommend.item_knn import ItemKNN, interactions_from_events
from tests.models.recommend.test_evaluation import START, session_events, write
from tests.native_support import loops, needs_build


def test_similarity_follows_shared_users_and_is_shrunk_when_few_share() -> None:
    pairs = [(f"u{i}", "a", 1.0) for i in range(20)] + [(f"u{i}", "b", 1.0) for i in range(20)]
    pairs += [("v1", "a", 1.0), ("v1", "c", 1.0), ("v2", "a", 1.0), ("v2", "c", 1.0)]
    knn = ItemKNN(shrinkage=5.0).fit(pairs)
    to_b, to_c = knn.neighbours_of("a")["b"], knn.neighbours_of("a")["c"]
    assert to_b > to_c > 0  # c's cosine with a is high too, but rests on two users
    assert ItemKNN(shrinkage=0.0).fit(pairs).neighbours_of("c")["a"] > knn.neighbours_of("c")["a"]
    assert "c" not in ItemKNN(min_common=3).fit(pairs).neighbours_of("a")


def test_an_unhelpful_vote_removes_the_pair_and_unrelated_articles_have_no_link() -> None:
    events = [
        {"type": "article_viewed", "user_id": "u1", "article_id": "a"},
        {"type": "article_viewed", "user_id": "u1", "article_id": "b"},
        {"type": "article_feedback", "user_id": "u1", "article_id": "b", "helpful": False},
        {"type": "resolution", "user_id": "u1", "article_id": "c", "resolved": True},
        {"type": "resolution", "user_id": "u1", "article_id": "d", "resolved": False},
    ]
    knn = ItemKNN(min_common=1).fit(interactions_from_events(events))
    assert set(knn.neighbours_of("a")) == {"c"}
    assert knn.scores(["z"]) == {}


def kb_of(*ids: str) -> KnowledgeBase:
    return KnowledgeBase(
        [Article(id=i, title=f"About {i}", body=f"Text {i}.", intents=[f"intent_{i}"]) for i in ids]
    )


def test_the_hybrid_ranks_what_similar_customers_used_with_a_reason() -> None:
    kb = kb_of("a", "b", "c")
    pairs = [(f"u{i}", "a", 1.0) for i in range(10)] + [(f"u{i}", "b", 1.0) for i in range(10)]
    view = {
        "personalization": True,
        "articles_viewed": ["a"],
        "articles_helpful": [],
        "articles_resolved": [],
        "articles_unhelpful": [],
    }
    without = HybridRecommender(kb).recommend(view, "hello there", None, 0.0)
    recs = HybridRecommender(kb, cf=ItemKNN().fit(pairs)).recommend(view, "hello there", None, 0.0)
    assert without == [] and [r.article_id for r in recs] == ["b"]
    assert recs[0].reasons == ['customers who used "About a" also used it']
    # Not for a user without personalization (no view): nothing per-user is read.
    assert HybridRecommender(kb, cf=ItemKNN().fit(pairs)).recommend(None, "hi", None, 0.0) == []


def test_train_from_log_then_hot_load_the_newest_version(tmp_path: Path) -> None:
    log = open_log(f"sqlite:///{tmp_path}/log.db", partitions=2)
    events = []
    for i in range(12):
        user = f"u{i % 4}"
        first = "kb-express-courier" if (i // 4) % 2 else "kb-where-is-my-card"
        events += session_events(user, f"s{i}", START + timedelta(hours=i), first)
    write(log, events)
    model, meta = train_from_log(log, features=None)
    assert meta["users"] == 4 and meta["interactions"] == 8 and meta["events"] == len(events)
    cut = train_from_log(
        log, until=(START + timedelta(hours=1, minutes=30)).timestamp(), features=None
    )[1]
    assert cut["interactions"] == 2
    log.close()
    loader = CFLoader(tmp_path)
    assert loader.poll() is None  # nothing saved yet
    save_cf(tmp_path, model, meta)
    loaded = loader.poll()
    assert loaded is not None and loaded.neighbours_of("kb-express-courier") == pytest.approx(
        model.neighbours_of("kb-express-courier")
    )
    assert loader.poll() is None  # unchanged: nothing reloaded


compiled = getattr(loops, "top_similar", None)  # None: not built (see native_support)
ARTICLES = [f"a{i}" for i in range(12)]
similarities = st.one_of(
    st.sampled_from([0.0, -0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(-2.0, 2.0, width=32)
)


@needs_build
@settings(max_examples=300, deadline=None)
@given(
    lists=st.dictionaries(
        st.sampled_from(ARTICLES),
        st.dictionaries(st.sampled_from(ARTICLES), similarities, max_size=8),
        max_size=8,
    ),
    basket=st.lists(st.sampled_from(ARTICLES), max_size=6),
    n=st.integers(0, 14),
)
def test_the_compiled_best_neighbours_are_the_python_reference(
    lists: dict, basket: list[str], n: int
) -> None:
    """The same articles in the same order with the same floats, ties cut by id."""
    knn = ItemKNN()
    knn._neighbours = lists
    for make in (list, frozenset, iter):  # each basket walked as set() walks it
        want = knn.most_similar_in_python(make(basket), n)
        assert list(compiled(lists, make(basket), n).items()) == list(want.items())
    assert knn.most_similar(basket, n) == knn.most_similar_in_python(basket, n)


@needs_build
def test_what_the_python_path_must_read_is_left_to_it() -> None:
    knn = ItemKNN()
    others = {
        "an int similarity": {"a": {"b": 1}},
        "a NaN": {"a": {"b": math.nan}},
        "a list that is no dict": {"a": [("b", 0.5)]},
        "an id that is no str": {"a": {7: 0.5}},
    }
    for name, lists in others.items():
        assert compiled(lists, ["a"], 3) is None, name
        knn._neighbours = lists
        if name != "a list that is no dict":  # the Python path reads the rest
            knn.most_similar(["a"], 3)
    assert compiled({"a": {"b": 0.5}}, ["a"], -1) is None
    assert compiled({}, ["a"], 3) == {}
    with pytest.raises(TypeError):
        compiled({"a": {"b": 0.5}}, 5, 3)  # a basket must be iterable, as set() needs
