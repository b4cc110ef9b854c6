"""The A/B test: stable user split, per-arm outcome counters, report with 95 % intervals."""

from __future__ import annotations

import doctest
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tailorbot.features.context import NON_PERSONAL_KEYS, AttributeContext
from tailorbot.services.decisions import experiment as experiment_module
from tailorbot.services.decisions.experiment import Experiment
from tailorbot.services.decisions.schemas import MeanEstimate
from tests.helpers import bandit_updates
from tests.services.decisions.conftest import ask, runtime_of, tell

CARD_MESSAGE = "my new card has still not arrived"
# Experiment("ab1", holdout=0.3)'s arms of user-0 ... user-7, as the code before made them
PINNED_ARMS = ["personalized"] * 7 + ["control"]


def contains(estimate: MeanEstimate, value: float) -> bool:
    assert estimate.ci95 is not None
    low, high = estimate.ci95
    return low <= value <= high


def test_docstring_example_runs() -> None:
    assert doctest.testmod(experiment_module).failed == 0


# --- the split ------------------------------------------------------------------------------


def test_the_split_is_stable_and_follows_the_holdout() -> None:
    users = [f"user-{i}" for i in range(4000)]
    experiment = Experiment("ab1", holdout=0.3)
    arms = [experiment.arm_for(u) for u in users]
    assert arms == [Experiment("ab1", holdout=0.3).arm_for(u) for u in users]
    share = arms.count("control") / len(arms)
    assert 0.27 <= share <= 0.33, share
    other = [Experiment("ab2", holdout=0.3).arm_for(u) for u in users]
    assert other != arms, "each experiment splits users afresh"
    assert {Experiment("x", 0.0).arm_for(u) for u in users} == {"personalized"}
    assert {Experiment("x", 1.0).arm_for(u) for u in users} == {"control"}


def test_the_split_is_the_one_every_version_made() -> None:
    """A running experiment keeps its users' arms across upgrades: the hash is blake2b (8
    bytes) of the name, a NUL and the id, whichever way it is fed."""
    import hashlib

    experiment = Experiment("ab1", holdout=0.3)
    for user in ("user-1", "", "ü-ßer", "x" * 300):
        key = f"ab1\x00{user}".encode()
        want = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
        assert experiment._hash(user) == want
    # pinned values: a change of the hash would move users between arms
    assert [experiment.assigned_arm(f"user-{i}") for i in range(8)] == PINNED_ARMS


# --- the report -----------------------------------------------------------------------------


def _report_of(outcomes: list[tuple[str, str, dict[str, Any]]], holdout: float = 0.5) -> Any:
    experiment = Experiment("demo", holdout=holdout, control="fixed_variant:concise")
    totals: dict[str, float] = {}
    for arm, user, outcome in outcomes:
        for key, value in experiment.outcome_deltas(arm, user, **outcome).items():
            totals[key] = totals.get(key, 0.0) + value
    return experiment.report_from(totals)


def test_the_report_counts_each_arm_with_user_clustered_intervals() -> None:
    ratings = {"personalized": [5, 4, 3, 5], "control": [2, 3, 4]}
    resolved = {"personalized": [True, True, True, False], "control": [True, False, False]}
    outcomes = []
    for arm in ratings:
        for i, (rating, ok) in enumerate(zip(ratings[arm], resolved[arm], strict=True)):
            signals = {"rating": rating, "resolved": ok, "reward": (rating - 1) / 4}
            outcomes.append((arm, f"{arm}-{i}", signals))
    outcomes.append(("control", "control-0", {"rating": None, "resolved": None, "reward": None}))
    report = _report_of(outcomes)
    assert report.control == "fixed_variant:concise"
    assert report.clusters == "users, in 256 hash buckets"

    p, c = report.arms["personalized"], report.arms["control"]
    assert (p.feedback, c.feedback) == (4, 4)  # feedback without a signal counts too
    assert (p.csat.n, c.csat.n) == (4, 3)
    assert p.csat.mean == pytest.approx(4.25) and c.csat.mean == pytest.approx(3.0)
    for estimate in (p.csat, c.csat, p.resolution_rate, c.resolution_rate, p.reward, c.reward):
        assert contains(estimate, estimate.mean)
    # One user per bucket (no two of these ids share one): the cluster-robust variance of the
    # control's mean is G / (G - 1) * sum((y - mean)^2) / n^2 = 3/2 * 2 / 9.
    half = 1.959964 * math.sqrt(1.5 * 2 / 9)
    assert c.csat.ci95 == pytest.approx((3 - half, 3 + half))

    lift = report.csat_lift
    assert lift is not None and lift.estimate == pytest.approx(1.25)
    assert lift.n == 7 and lift.clusters == 7
    assert lift.ci95[0] < 1.25 < lift.ci95[1]
    assert lift.always_valid_ci95 is not None
    assert lift.always_valid_ci95[0] < lift.ci95[0] and lift.always_valid_ci95[1] > lift.ci95[1]
    assert lift.cuped is None  # no pre-period
    assert report.resolution_lift is not None
    assert report.resolution_lift.estimate == pytest.approx(0.75 - 1 / 3)


def test_one_users_contacts_share_a_bucket_so_they_count_as_one_cluster() -> None:
    many = [("control", "loyal", {"rating": r, "resolved": None, "reward": None}) for r in (1, 5)]
    many += [("control", "other", {"rating": 3, "resolved": None, "reward": None})]
    many += [
        ("personalized", f"p{i}", {"rating": 3 + i, "resolved": None, "reward": None})
        for i in range(3)
    ]
    report = _report_of(many)
    assert report.csat_lift is not None and report.csat_lift.clusters == 2 + 3


def test_pre_period_outcomes_feed_cuped() -> None:
    experiment = Experiment("demo", holdout=0.5)
    totals: dict[str, float] = {}

    def add(arm: str, user: str, rating: int) -> None:
        deltas = experiment.outcome_deltas(arm, user, rating=rating, resolved=None, reward=None)
        for key, value in deltas.items():
            totals[key] = totals.get(key, 0.0) + value

    for i in range(60):
        user = f"u{i}"
        taste = 1 + i % 5  # a persistent user effect: pre and post ratings agree...
        add("pre_period", user, taste)
        add(experiment.assigned_arm(user), user, min(5, taste + (i % 7 == 0)))  # ...mostly
    report = experiment.report_from(totals)
    lift = report.csat_lift
    assert lift is not None and lift.cuped is not None
    # Pre-period outcomes are not experiment outcomes...
    assert report.arms["control"].csat.n + report.arms["personalized"].csat.n == 60
    # ... and CUPED removes most of the noise the users' tastes make
    width = lift.ci95[1] - lift.ci95[0]
    assert width > 0.5 and lift.cuped.ci95[1] - lift.cuped.ci95[0] < width / 4


def test_before_the_start_everyone_is_in_the_pre_period() -> None:
    future = Experiment("x", holdout=0.5, start=time.time() + 3600)
    assert {future.arm_for(f"u{i}") for i in range(50)} == {"pre_period"}
    past = Experiment("x", holdout=0.5, start=time.time() - 1)
    assert {past.arm_for(f"u{i}") for i in range(50)} == {"control", "personalized"}


def test_an_empty_or_thin_report_has_no_intervals() -> None:
    empty = _report_of([])
    assert empty.arms["control"].csat == MeanEstimate(n=0, mean=None, ci95=None)
    assert empty.csat_lift is None and empty.resolution_lift is None
    one = _report_of([("personalized", "u1", {"rating": 4, "resolved": None, "reward": None})])
    assert one.arms["personalized"].csat == MeanEstimate(n=1, mean=4.0, ci95=None)
    assert one.csat_lift is None


def test_counters_of_another_layout_are_ignored() -> None:
    experiment = Experiment("demo", holdout=0.5)
    old = {"control/rating_n": 3.0, "control/rating_sum": 9.0, "control/999/rating_n": 1.0}
    assert experiment.report_from(old).arms["control"].feedback == 0


# --- through the service --------------------------------------------------------------------


def test_a_named_control_variant_is_served_fixed(make_service: Any) -> None:
    _, service = make_service(experiment_holdout=1.0, control_variant="empathetic")
    store = runtime_of(service).stores.counters
    for i in range(12):
        answer = ask(service, f"c{i}", CARD_MESSAGE)
        assert answer.experiment_arm == "control"
        assert answer.response.variant == "empathetic"
        assert answer.response.propensity == 1.0
        assert answer.user.personalized is False and answer.user.consent is True
        assert answer.articles, "the control still answers with articles"
        tell(service, answer.decision_id, rating=2 + i % 3, resolved=i % 2 == 0)
    # The bandit learns only from the personalized arm: the control stays a fixed baseline.
    assert store.counters(service.models.policy.namespace) == {}
    assert service.models.control is None
    report = service.experiment_report()
    assert report.holdout == 1.0 and report.control == "fixed_variant:empathetic"
    assert report.arms["control"].feedback == 12 and report.arms["personalized"].feedback == 0
    assert report.arms["control"].csat.mean == pytest.approx(3.0)
    assert contains(report.arms["control"].csat, 3.0)
    assert report.arms["control"].resolution_rate.mean == pytest.approx(0.5)
    assert report.csat_lift is None


def test_the_default_control_learns_the_best_variant_per_channel_from_no_personal_history(
    make_service: Any,
) -> None:
    """The strongest non-personalized control sees the conversation's channel and language
    and the account's tier group, never the customer's history, segment or memory."""
    _, service = make_service(experiment_holdout=1.0, bandit_epsilon=0.3)
    control = service.models.control
    assert control is not None and control.namespace != service.models.policy.namespace
    assert control.namespace.startswith("control:")
    assert list(control.bandit.features) == list(NON_PERSONAL_KEYS)
    store = runtime_of(service).stores.counters
    liked = {"email": "concise", "chat": "step_by_step"}
    served: dict[str, list[str]] = {"email": [], "chat": []}
    for i in range(200):
        channel = ("email", "chat")[i % 2]
        answer = ask(
            service, f"c{i % 20}", CARD_MESSAGE, session_id=f"s{i}", context={"channel": channel}
        )
        assert answer.experiment_arm == "control" and answer.user.personalized is False
        assert 0.0 < answer.response.propensity <= 1.0
        variant = answer.response.variant
        served[channel].append(variant)
        # Email customers like "concise", chat customers "step_by_step": a context-free
        # control could serve only one of them its best.
        tell(service, answer.decision_id, rating=5 if variant == liked[channel] else 1)
    assert store.vectors(service.models.policy.namespace) == {}, "personalized bandit untouched"
    assert any(n > 0 for n in bandit_updates(store, control.namespace).values())
    for channel, variant in liked.items():
        assert served[channel][-30:].count(variant) >= 18, (channel, served[channel][-30:])
    assert service.experiment_report().control == "channel_language_tier_bandit"


def test_the_control_reads_the_non_personal_part_of_a_context() -> None:
    from tailorbot.features.context import feature_names, non_personal

    personal = {name: 0.7 for name in feature_names(AttributeContext(("new_account",)))}
    seen = non_personal({**personal, "bias": 1.0})
    assert set(seen) == set(NON_PERSONAL_KEYS)
    assert not set(seen) & {"csat", "events_24h_log", "own_reward", "attr_new_account", "bias"}


def test_a_control_variant_the_kb_lacks_is_a_clear_error() -> None:
    from tailorbot.config import Settings
    from tailorbot.services.decisions.loader import control_policy

    settings = Settings.load(control_variant="empathetic")
    with pytest.raises(ValueError, match="control_variant 'empathetic' is not a variant"):
        control_policy(settings, None, ["short", "long"])  # type: ignore[arg-type]


def test_a_variant_of_a_custom_kb_can_be_the_fixed_control(make_service: Any) -> None:
    """Variant names are the KB's own (the telecom example's: brief, guided, warm)."""
    kb = Path(__file__).parents[3] / "examples" / "telecom" / "kb"
    _, service = make_service(experiment_holdout=1.0, control_variant="guided", kb_dir=kb)
    answer = ask(service, "c1", "my phone has no signal abroad")
    assert (answer.experiment_arm, answer.response.variant) == ("control", "guided")
    assert service.experiment_report().control == "fixed_variant:guided"


def test_no_holdout_personalizes_everyone(make_service: Any) -> None:
    _, service = make_service(experiment_holdout=0.0)
    answers = [ask(service, f"p{i}", CARD_MESSAGE) for i in range(20)]
    assert {a.experiment_arm for a in answers} == {"personalized"}
    assert all(a.user.personalized for a in answers)


def test_a_split_experiment_reports_both_arms(make_service: Any) -> None:
    _, service = make_service(experiment_holdout=0.5, experiment_name="split")
    arms: dict[str, list[int]] = {"personalized": [], "control": []}
    for i in range(30):
        answer = ask(service, f"s{i}", CARD_MESSAGE)
        assert answer.experiment_arm == service.experiment.arm_for(f"s{i}")
        rating = 4 + i % 2 if answer.experiment_arm == "personalized" else 2 + i % 2
        arms[answer.experiment_arm].append(rating)
        tell(service, answer.decision_id, rating=rating)
    assert all(len(ratings) >= 2 for ratings in arms.values()), arms
    report = service.experiment_report()
    assert report.name == "split"
    for arm, ratings in arms.items():
        assert report.arms[arm].feedback == len(ratings)
        assert report.arms[arm].csat.mean == pytest.approx(sum(ratings) / len(ratings))
        assert contains(report.arms[arm].csat, report.arms[arm].csat.mean)
    assert report.csat_lift is not None
    assert report.csat_lift.estimate == pytest.approx(
        report.arms["personalized"].csat.mean - report.arms["control"].csat.mean
    )
    counters = runtime_of(service).stores.counters
    n_personalized = sum(bandit_updates(counters, service.models.policy.namespace).values())
    assert n_personalized == len(arms["personalized"])


def test_before_the_start_the_service_serves_the_control_and_keeps_a_pre_period(
    make_service: Any,
) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    _, service = make_service(experiment_holdout=0.5, experiment_start=start)
    for i in range(6):
        answer = ask(service, f"early{i}", CARD_MESSAGE)
        assert answer.experiment_arm == "pre_period"
        assert answer.user.personalized is False
        tell(service, answer.decision_id, rating=4)
    report = service.experiment_report()
    assert report.pre_period is True
    assert report.arms["control"].feedback == report.arms["personalized"].feedback == 0
    counters = runtime_of(service).stores.counters.counters(service.experiment.namespace)
    assert sum(v for k, v in counters.items() if k.endswith("/pre/rating_n")) == 6
    # The control's bandit served (and learned from) the pre-period; the personalized did not.
    assert runtime_of(service).stores.counters.counters(service.models.policy.namespace) == {}


def test_each_experiment_splits_users_afresh_at_its_holdout_share() -> None:
    """Two experiments split the same users independently, and consecutive ids (sign-up
    cohorts) land in the control at the holdout share (with CRC32, a linear hash, two names
    split ids of one length identically or exactly inverted, and blocks of 1,000 consecutive
    ids held 44 % or 56 % control)."""
    first, second = (Experiment(name, holdout=0.5, control="fixed") for name in ("exp1", "exp2"))
    ids = [f"{i:012x}" for i in range(4000)]
    agree = sum(first.assigned_arm(u) == second.assigned_arm(u) for u in ids) / len(ids)
    assert 0.45 < agree < 0.55  # independent halves agree half the time
    for block in range(4):  # binomial sd of a share of 1,000: 0.016
        cohort = [f"user-{i}" for i in range(block * 1000, (block + 1) * 1000)]
        share = sum(first.assigned_arm(u) == "control" for u in cohort) / len(cohort)
        assert 0.45 < share < 0.55, (block, share)


def test_a_decision_of_another_experiment_is_not_in_this_readout(make_service: Any) -> None:
    """Feedback on a decision an earlier experiment served teaches the bandits, but counts in
    the current experiment's readout only if that experiment served it."""
    _, before = make_service(experiment_name="exp-a", experiment_holdout=0.5)
    decisions = [ask(before, f"x{i}", CARD_MESSAGE).decision_id for i in range(6)]
    _, after = make_service(experiment_name="exp-b", experiment_holdout=0.5)
    for decision_id in decisions:
        assert tell(after, decision_id, rating=1, resolved=False).applied
    report = after.experiment_report()
    assert sum(arm.feedback for arm in report.arms.values()) == 0
    mine = ask(after, "y1", CARD_MESSAGE).decision_id
    tell(after, mine, rating=5)
    assert sum(arm.feedback for arm in after.experiment_report().arms.values()) == 1
    assert runtime_of(after).stores.decisions.get(mine)["experiment"] == "exp-b"


def test_no_variation_seen_gives_no_interval() -> None:
    """Every user rates 5 and resolves: a plug-in variance of 0 would give zero-width
    intervals, the always-valid one included, claiming certainty from a handful of users."""
    same = [
        (arm, f"{arm}{i}", {"rating": 5, "resolved": True, "reward": 1.0})
        for arm in ("control", "personalized")
        for i in range(15)
    ]
    report = _report_of(same)
    assert report.arms["control"].csat.mean == 5.0 and report.arms["control"].csat.ci95 is None
    assert report.csat_lift is None and report.resolution_lift is None
