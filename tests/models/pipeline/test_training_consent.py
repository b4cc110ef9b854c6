"""Analytics consent in every learning path, not only the intent dataset: a user whose
profile has ``consent.analytics`` false is left out of the CF recommender's training and of
the reward model's, through the one rule ``build_dataset`` applies."""

from __future__ import annotations

from typing import Any

import pytest

from tailorbot.models.pipeline.cf import train_cf
from tailorbot.models.pipeline.reward import train_reward
from tests.models.pipeline.test_cf_reward import co_use_log, decisions


def opted_out(users: list[str]) -> dict[str, dict[str, Any]]:
    return {user: {"consent": {"analytics": False}} for user in users}


def test_consenting_drops_the_items_of_users_who_withheld_analytics_consent() -> None:
    from tailorbot.models.pipeline.dataset import consenting

    items = [{"user_id": "u1"}, {"user_id": "u2"}, {"user_id": "u3"}]
    profiles = {**opted_out(["u1"]), "u2": {"consent": {"analytics": True}}}
    assert consenting(items, profiles) == items[1:]
    assert consenting(items, None) == items  # no profile: consent is assumed


def test_cf_training_leaves_out_the_users_who_withheld_consent() -> None:
    events = co_use_log()
    out = [f"u{u}" for u in range(0, 60, 3)]
    run = train_cf(events, search=False, profiles=opted_out(out))
    kept = [e for e in events if e["user_id"] not in out]
    assert run.card["data"]["events"] == len(kept) < len(events)
    assert run.test_rows and not {r["user_id"] for r in run.test_rows} & set(out)
    with pytest.raises(ValueError, match="consents to analytics"):
        train_cf(events, profiles=opted_out([f"u{u}" for u in range(60)]))


def test_reward_training_leaves_out_the_users_who_withheld_consent() -> None:
    records = decisions()
    out = [f"u{u}" for u in range(10)]  # a quarter of the 40 users
    run = train_reward(records, search=False, profiles=opted_out(out))
    kept = [r for r in records if r["user_id"] not in out]
    assert run.card["data"]["rows"] == len(kept) < len(records)
    assert not {r["user_id"] for r in run.test_rows} & set(out)
