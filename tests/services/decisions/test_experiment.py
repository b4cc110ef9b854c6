"""The A/B test: stable user split, per-arm outcome counters, report with 95 % intervals."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tailorbot.services.decisions.experiment import Experiment
from tailorbot.services.decisions.schemas import MeanEstimate
from tests.services.decisions.conftest import ask, runtime_of, tell

CARD_MESSAGE = "my new card has still not arrived"


def contains(estimate: MeanEstimate, value: float) -> bool:
    assert estimate.ci95 is not None
    low, high = estimate.ci95
    return low <= value <= high


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


# --- the report -----------------------------------------------------------------------------


def _report_of(outcomes: list[tuple[str, dict[str, Any]]], holdout: float = 0.5) -> Any:
    experiment = Experiment("demo", holdout=holdout)
    totals: dict[str, float] = {}
    for arm, outcome in outcomes:
        for key, value in experiment.outcome_deltas(arm, **outcome).items():
            totals[key] = totals.get(key, 0.0) + value
    return experiment.report_from(totals)


def test_the_report_counts_each_arm_with_intervals_around_the_mean() -> None:
    ratings = {"personalized": [5, 4, 3, 5], "control": [2, 3, 4]}
    resolved = {"personalized": [True, True, True, False], "control": [True, False, False]}
    outcomes = []
    for arm in ratings:
        for rating, ok in zip(ratings[arm], resolved[arm], strict=True):
            outcomes.append((arm, {"rating": rating, "resolved": ok, "reward": (rating - 1) / 4}))
    outcomes.append(("control", {"rating": None, "resolved": None, "reward": None}))
    report = _report_of(outcomes)

    p, c = report.arms["personalized"], report.arms["control"]
    assert (p.feedback, c.feedback) == (4, 4)  # feedback without a signal counts too
    assert (p.csat.n, c.csat.n) == (4, 3)
    assert p.csat.mean == pytest.approx(4.25) and c.csat.mean == pytest.approx(3.0)
    # Sample sd of (2, 3, 4) is 1: half-width 1.96 / sqrt(3).
    assert c.csat.ci95 == pytest.approx((3 - 1.959964 / math.sqrt(3), 3 + 1.959964 / math.sqrt(3)))
    for estimate in (p.csat, c.csat, p.resolution_rate, c.resolution_rate, p.reward, c.reward):
        assert contains(estimate, estimate.mean)
    # Wilson interval of 3 successes in 4, worked by hand: centre 0.6275, half-width 0.3269.
    assert p.resolution_rate.mean == 0.75
    assert p.resolution_rate.ci95 == pytest.approx((0.3006, 0.9544), abs=2e-4)

    lift = report.csat_lift
    assert lift is not None and lift.mean == pytest.approx(1.25)
    half = math.hypot((p.csat.ci95[1] - p.csat.ci95[0]) / 2, (c.csat.ci95[1] - c.csat.ci95[0]) / 2)
    assert lift.ci95 == pytest.approx((1.25 - half, 1.25 + half))
    assert report.resolution_lift is not None
    assert report.resolution_lift.mean == pytest.approx(0.75 - 1 / 3)


def test_an_empty_or_thin_report_has_no_intervals() -> None:
    empty = _report_of([])
    assert empty.arms["control"].csat == MeanEstimate(n=0, mean=None, ci95=None)
    assert empty.csat_lift is None and empty.resolution_lift is None
    one = _report_of([("personalized", {"rating": 4, "resolved": None, "reward": None})])
    assert one.arms["personalized"].csat == MeanEstimate(n=1, mean=4.0, ci95=None)
    assert one.csat_lift is None


def test_a_unanimous_proportion_keeps_a_wilson_interval_inside_zero_one() -> None:
    report = _report_of([("control", {"rating": None, "resolved": False, "reward": None})] * 5)
    rate = report.arms["control"].resolution_rate
    assert rate.mean == 0.0 and rate.ci95 is not None
    assert rate.ci95[0] == pytest.approx(0.0, abs=1e-12) and 0.0 < rate.ci95[1] < 0.6


# --- through the service --------------------------------------------------------------------


def test_full_holdout_serves_the_fixed_control_variant(make_service: Any) -> None:
    _, service = make_service(experiment_holdout=1.0, control_variant="empathetic")
    store = runtime_of(service).stores.counters
    for i in range(12):
        answer = ask(service, f"c{i}", CARD_MESSAGE)
        assert answer.experiment_arm == "control"
        assert answer.response.variant == "empathetic"
        assert answer.response.propensity == 1.0
        assert answer.user.personalized is False and answer.user.consent is True
        assert answer.articles, "the control still answers with intent-only articles"
        tell(service, answer.decision_id, rating=2 + i % 3, resolved=i % 2 == 0)
    # The bandit learns only from the personalized arm: the control stays a fixed baseline.
    assert store.counters(service.models.policy.namespace) == {}
    report = service.experiment_report()
    assert report.holdout == 1.0
    assert report.arms["control"].feedback == 12 and report.arms["personalized"].feedback == 0
    assert report.arms["control"].csat.mean == pytest.approx(3.0)
    assert contains(report.arms["control"].csat, 3.0)
    assert report.arms["control"].resolution_rate.mean == pytest.approx(0.5)
    assert report.csat_lift is None


def test_the_control_variant_defaults_to_the_first(make_service: Any) -> None:
    _, service = make_service(experiment_holdout=1.0)
    assert ask(service, "c1", CARD_MESSAGE).response.variant == "concise"


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
        rating = 5 if answer.experiment_arm == "personalized" else 2 + i % 2
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
    assert report.csat_lift.mean == pytest.approx(
        report.arms["personalized"].csat.mean - report.arms["control"].csat.mean
    )
    counters = runtime_of(service).stores.counters.counters(service.models.policy.namespace)
    n_personalized = sum(v for k, v in counters.items() if k.endswith("/n"))
    assert n_personalized == len(arms["personalized"])
