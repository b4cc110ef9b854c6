"""The CF recommender and the reward model through the pipeline: time split, selection on
validation, one test, a candidate with its card, the promotion gate, and the current pointer
that servers follow."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from tailorbot.models import registry
from tailorbot.models.pipeline import promotion
from tailorbot.models.pipeline.audit import AuditGate
from tailorbot.models.pipeline.cf import train_cf
from tailorbot.models.pipeline.reward import train_reward
from tailorbot.models.recommend.cf_training import CF_KIND, CFLoader
from tests.models.recommend.test_evaluation import START, session_events

GATE = AuditGate()


def co_use_log(users: int = 60) -> list[dict]:
    """Each customer is resolved first by article ``a{i}``, an hour later by ``b{i}`` (i = the
    customer's group): who used a{i} next needs b{i}, which only co-use tells."""
    events = []
    for u in range(users):
        group, at = u % 5, START + timedelta(hours=2 * u)
        events += session_events(f"u{u}", f"u{u}-0", at, f"a{group}")
        events += session_events(f"u{u}", f"u{u}-1", at + timedelta(hours=1), f"b{group}")
    return sorted(events, key=lambda e: e["timestamp"])


def test_cf_is_selected_on_validation_tested_once_and_gated(tmp_path: Path) -> None:
    events = co_use_log()
    run = train_cf(events)
    card = run.card
    assert card["data"]["splits"]["validation"] > 0 and card["test"]["n"] == len(run.test_rows)
    newest_fit = card["data"]["validation_until"]
    assert all(r["epoch"] > newest_fit for r in run.test_rows)  # tested on the future only
    assert card["validation"]["candidates"] == 32 and card["test"]["hit_rate"] == 1.0
    assert card["test"]["popularity_hit_rate"] < 0.7  # co-use, not popularity, finds b{i}
    first = promotion.save_candidate(tmp_path, run, kind=CF_KIND)
    loader = CFLoader(tmp_path)
    assert loader.poll() is None  # a candidate is not served before the gate
    promotion.promote(tmp_path, first.version, GATE, kind=CF_KIND)
    assert loader.poll() is not None and loader.version == first.version
    blind = train_cf(events, search=False, params={"min_common": 1000})  # no neighbours at all
    worse = promotion.save_candidate(tmp_path, blind, kind=CF_KIND)
    with pytest.raises(promotion.PromotionRefused, match="hit_rate 0.0000 is below the current"):
        promotion.promote(tmp_path, worse.version, GATE, kind=CF_KIND)
    assert loader.poll() is None and registry.current_version(tmp_path, CF_KIND) == first.version


def decisions(n: int = 300, seed: int = 0) -> list[dict]:
    """VIP customers are rewarded by variant a, the others by b (plus noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        vip, variant = float(rng.random() < 0.5), "ab"[int(rng.integers(2))]
        reward = float((vip == 1.0) == (variant == "a")) * 0.8 + 0.2 * float(rng.random())
        at = (START + timedelta(minutes=i)).isoformat()
        out.append(
            {"decision_id": f"d{i}", "user_id": f"u{i % 40}", "variant": variant,
             "context": {"vip": vip}, "feedback": {"reward": reward}, "created_at": at}
        )  # fmt: skip
    return out


def test_the_reward_model_is_selected_tested_and_a_worse_one_refused(tmp_path: Path) -> None:
    run = train_reward(decisions())
    card = run.card
    assert card["data"]["splits"] == {"train": 210, "validation": 45, "test": 45}
    assert min(r["created_at"] for r in run.test_rows) > card["data"]["window"]["first"]
    assert card["test"]["rmse"] < card["test"]["baseline_rmse"] / 2  # it learned the rule
    first = promotion.save_candidate(tmp_path, run, kind="reward")
    result = promotion.promote(tmp_path, first.version, GATE, kind="reward")
    assert result.metric == "rmse" and result.audit is None  # no intent audit for this kind
    flat = train_reward(decisions(), search=False, ridge=1e9)  # predicts the mean reward
    worse = promotion.save_candidate(tmp_path, flat, kind="reward")
    with pytest.raises(promotion.PromotionRefused, match="rmse .* above the current version"):
        promotion.promote(tmp_path, worse.version, GATE, kind="reward")
    assert registry.current_version(tmp_path, "reward") == first.version


def test_too_little_data_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="too few for a 70/15/15 split"):
        train_reward(decisions(3))
    with pytest.raises(ValueError, match="need at least one in each"):
        train_cf(co_use_log(users=1))
