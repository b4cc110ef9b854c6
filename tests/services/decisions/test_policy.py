"""VariantPolicy: a bandit whose statistics are additive vectors shared through the store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tailorbot.config import Settings
from tailorbot.features.context import AttributeContext, feature_names
from tailorbot.models.bandit import LinearThompson, LinUCB
from tailorbot.services.decisions.policy import VariantPolicy, make_bandit
from tailorbot.store import open_stores
from tailorbot.store.base import CounterStore
from tests.helpers import CountedReads, bandit_updates, per_entry

VARIANTS = ["concise", "step_by_step", "empathetic"]
VIP = {"tier_vip": 1.0, "csat": 0.75}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CounterStore]:
    opened = open_stores(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened.counters
    opened.close()


def policy(store: CounterStore, sync_s: float = 0.0, **settings: object) -> VariantPolicy:
    values = {"data_dir": Path("unused"), "seed": 3, **settings}
    bandit = make_bandit(Settings.load(**values), feature_names(AttributeContext(("new_account",))))
    return VariantPolicy(bandit, store, sync_s)


def test_make_bandit_follows_the_settings(store: CounterStore) -> None:
    linucb = policy(store, bandit_alpha=0.7, bandit_epsilon=0.2).bandit
    assert isinstance(linucb, LinUCB)
    assert (linucb.alpha, linucb.epsilon, linucb.seed) == (0.7, 0.2, 3)
    assert "attr_new_account" in linucb.features and "bias" not in linucb.features
    thompson = policy(store, bandit="thompson", bandit_alpha=0.3).bandit
    assert isinstance(thompson, LinearThompson) and thompson.v == 0.3


def test_the_namespace_names_the_model_and_its_features(store: CounterStore) -> None:
    a = policy(store)
    assert a.namespace.startswith("bandit:linucb:")
    assert policy(store).namespace == a.namespace
    assert policy(store, bandit="thompson").namespace.startswith("bandit:linearthompson:")
    other = VariantPolicy(
        make_bandit(
            Settings.load(data_dir=Path("x")),
            feature_names(AttributeContext(("segment=business",))),
        ),
        store,
    )
    assert other.namespace != a.namespace, "another feature list starts from fresh counters"


def test_learning_adds_the_update_to_the_shared_counters(store: CounterStore) -> None:
    p = policy(store)
    p.learn(VIP, "concise", 1.0)
    p.learn(VIP, "concise", 0.5)
    vectors = store.vectors(p.namespace)
    assert vectors.keys() == p.bandit.statistics().keys() == {"arm/concise"}
    assert vectors["arm/concise"].tolist() == p.bandit.statistics()["arm/concise"].tolist()
    assert bandit_updates(store, p.namespace) == {"concise": 2.0}
    assert store.counters(p.namespace) == {}, "one packed row an arm, not a counter an entry"
    assert p.bandit.n_updates("concise") == 2


def test_a_second_process_learns_through_the_store(store: CounterStore) -> None:
    teacher, learner = policy(store), policy(store)
    for _ in range(30):
        teacher.learn(VIP, "empathetic", 1.0)
        teacher.learn(VIP, "concise", 0.0)
        teacher.learn(VIP, "step_by_step", 0.0)
    choice = learner.choose(VIP, VARIANTS)  # sync_s=0: reloads the sums first
    assert learner.bandit.n_updates("empathetic") == 30
    assert choice.arm in VARIANTS and 0.0 < choice.propensity <= 1.0
    picks = [learner.choose(VIP, VARIANTS).arm for _ in range(100)]
    assert picks.count("empathetic") >= 90


def test_the_local_copy_is_reloaded_only_every_sync_s(store: CounterStore) -> None:
    slow = policy(store, sync_s=3600.0)
    slow.choose(VIP, VARIANTS)  # the first choice always loads
    policy(store).learn(VIP, "concise", 1.0)
    slow.choose(VIP, VARIANTS)
    assert slow.bandit.n_updates("concise") == 0, "not reloaded within sync_s"
    slow.sync()
    assert slow.bandit.n_updates("concise") == 1


def test_without_sync_when_stale_a_choice_never_reads_the_store(store: CounterStore) -> None:
    """Choices on the event loop over a network store: a refresh overdue (here: never run)
    leaves the last statistics in place instead of a blocking read in the choice."""
    policy(store).learn(VIP, "concise", 1.0)
    values = {"data_dir": Path("unused"), "seed": 3}
    bandit = make_bandit(Settings.load(**values), feature_names(AttributeContext(("new_account",))))
    on_loop = VariantPolicy(bandit, store, 1.0, sync_when_stale=False)
    for _ in range(3):
        on_loop.choose(VIP, VARIANTS)
        on_loop.choose_for(None, VIP, VARIANTS)
    assert on_loop.bandit.n_updates("concise") == 0, "read the store in a choice"
    on_loop.sync()  # the background refresh's call
    assert on_loop.bandit.n_updates("concise") == 1


def test_concurrent_learners_never_lose_an_update(store: CounterStore) -> None:
    policies = [policy(store) for _ in range(4)]

    def learn(p: VariantPolicy) -> None:
        for i in range(50):
            p.learn({"csat": i / 50}, VARIANTS[i % 3], (i % 5) / 4)
            p.choose(VIP, VARIANTS)

    threads = [threading.Thread(target=learn, args=(p,)) for p in policies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(bandit_updates(store, policies[0].namespace).values()) == 200
    fresh = policy(store)
    fresh.sync()
    assert sum(fresh.bandit.n_updates(v) for v in VARIANTS) == 200


def test_statistics_an_older_store_holds_per_entry_are_kept(store: CounterStore) -> None:
    """A store written before the packed layout holds one counter an entry: an upgraded
    process loads them, adds what it learns as packed vectors, and reads both as one."""
    older, upgraded, reference = policy(store), policy(store), policy(store)
    dim = len(older.bandit.features) + 1
    for reward in (1.0, 0.5):
        older.bandit.learn_one(VIP, "concise", reward)
        reference.bandit.learn_one(VIP, "concise", reward)
    store.increment(older.namespace, per_entry(older.bandit.statistics(), dim))
    upgraded.learn({"csat": 0.25}, "concise", 0.0)
    upgraded.learn(VIP, "empathetic", 1.0)
    reference.bandit.learn_one({"csat": 0.25}, "concise", 0.0)
    reference.bandit.learn_one(VIP, "empathetic", 1.0)
    fresh = policy(store)
    fresh.sync()
    assert fresh.bandit.n_updates("concise") == 3 and fresh.bandit.n_updates("empathetic") == 1
    for arm in ("concise", "empathetic"):
        assert fresh.bandit.coefficients(arm) == pytest.approx(reference.bandit.coefficients(arm))


def test_a_sync_reads_the_store_only_when_something_changed(store: CounterStore) -> None:
    """The background refresh calls sync() every second: it reads the shared statistics
    again only when their stamps moved, or when the local copy learnt since its last
    rebuild, and then holds exactly what the store holds."""
    counted = CountedReads(store)
    p = policy(counted, sync_s=1.0)
    p.sync()
    first = counted.reads
    assert first > 0
    p.sync()
    assert counted.reads == first, "nothing changed: no read"
    policy(store).learn(VIP, "concise", 1.0)  # another process
    p.sync()
    assert counted.reads > first and p.bandit.n_updates("concise") == 1
    # A feedback batch's shared write, read by a refresh before the batch's local lesson:
    # the lesson counts twice until the next rebuild, which the stamps alone would skip.
    store.add_vectors(p.namespace, p.statistics_delta(VIP, "concise", 1.0))
    p.sync()
    p.learn_locally(VIP, "concise", 1.0)
    assert p.bandit.n_updates("concise") == 3
    p.sync()
    assert p.bandit.n_updates("concise") == 2
    read = counted.reads
    p.sync()
    assert counted.reads == read
