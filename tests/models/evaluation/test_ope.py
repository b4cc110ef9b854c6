"""Off-policy evaluation, validated in the simulator against separate on-policy runs.

A contextual LinUCB (the logging policy) serves simulated customers and logs its
propensities; each fixed variant's value is estimated from that log and compared with the
variant's true on-policy value, measured by a separate simulation that always plays it.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tailorbot.models.bandit import LinUCB, feedback_reward
from tailorbot.models.evaluation import ope
from tailorbot.models.evaluation.ope import (
    DoublyRobust,
    FixedVariant,
    InverseProbabilityWeighting,
    LearnedBandit,
    LoggedDecisions,
    SelfNormalizedIPS,
    base,
    data,
    dr,
    evaluate,
    evaluate_policies,
    ips,
    policies,
    reward_model,
    snips,
)
from tailorbot.sim import VARIANTS, Customer, CustomerPopulation, OutcomeModel

INTENTS = [f"intent_{k}" for k in range(8)]
ARTICLE_INTENTS = {f"kb-{k}": f"intent_{k}" for k in range(8)}
FEATURES = ["new_account", "non_english", "premium_tier", "email", "messaging"]
MODEL = OutcomeModel(article_intents=ARTICLE_INTENTS)
SEEDS = range(5)


def contact(customer: Customer, variant: str, rng: np.random.Generator) -> dict[str, float]:
    intent = customer.intents[int(rng.integers(len(customer.intents)))]
    predicted = intent if rng.random() < 0.85 else "intent_0"
    articles = [f"kb-{k}" for k in rng.choice(8, size=3, replace=False)]
    outcome = MODEL.react(
        customer, true_intent=intent, predicted_intent=predicted, articles=articles,
        variant=variant, rng=rng,
    )  # fmt: skip
    reward = feedback_reward(rating=outcome.rating, resolved=outcome.resolved)
    return {"rating": outcome.rating, "resolved": outcome.resolved, "reward": reward}


def context_of(customer: Customer) -> dict[str, float]:
    return {k: v for k, v in customer.observables().items() if k != "bias"}


def logged_run(seed: int, contacts: int) -> list[dict]:
    population = CustomerPopulation(size=300, seed=seed, intents=INTENTS)
    logger = LinUCB(FEATURES, alpha=1.0, epsilon=0.2, seed=seed)
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(contacts):
        customer = population.next_customer(rng)
        choice = logger.select(context_of(customer), VARIANTS, rng)
        feedback = contact(customer, choice.arm, rng)
        logger.learn_one(context_of(customer), choice.arm, feedback["reward"])
        records.append(
            {
                "user_id": customer.user_id,
                "variant": choice.arm,
                "propensity": choice.propensity,
                "context": context_of(customer),
                "feedback": feedback,
            }
        )
    return records


def on_policy_value(seed: int, variant: str, contacts: int) -> float:
    """The fixed variant's true value: a separate run that always plays it."""
    population = CustomerPopulation(size=300, seed=seed, intents=INTENTS)
    rng = np.random.default_rng([seed, 1000])
    rewards = [
        contact(population.next_customer(rng), variant, rng)["reward"] for _ in range(contacts)
    ]
    return float(np.mean(rewards))


def test_docstring_examples_run() -> None:
    for module in (ope, base, data, dr, evaluate, ips, policies, reward_model, snips):
        assert doctest.testmod(module).failed == 0, module.__name__


@pytest.fixture(scope="module")
def estimates_and_truth() -> list[tuple[dict[tuple[str, str], ope.Estimate], dict[str, float]]]:
    runs = []
    for seed in SEEDS:
        log = LoggedDecisions.from_records(logged_run(seed, 2000), actions=VARIANTS)
        found = evaluate_policies(
            log,
            [FixedVariant(v) for v in VARIANTS],
            [InverseProbabilityWeighting(), SelfNormalizedIPS(), DoublyRobust()],
            metrics=["reward"],
        )
        by_key = {(e.policy, e.estimator): e for e in found}
        truth = {v: on_policy_value(seed, v, 5000) for v in VARIANTS}
        runs.append((by_key, truth))
    return runs


@pytest.mark.parametrize("estimator", ["ips", "snips", "dr"])
def test_fixed_variant_estimates_cover_their_on_policy_value(
    estimator: str, estimates_and_truth: list
) -> None:
    for variant in VARIANTS:
        covered = 0
        for by_key, truth in estimates_and_truth:
            estimate = by_key[(f"fixed:{variant}", estimator)]
            covered += estimate.ci95[0] <= truth[variant] <= estimate.ci95[1]
            assert 0 < estimate.ess < estimate.n
        assert covered >= 4, (estimator, variant, covered)


def test_doubly_robust_is_at_least_as_tight_as_ips(estimates_and_truth: list) -> None:
    for by_key, _ in estimates_and_truth:
        for variant in VARIANTS:
            dr_ci, ips_ci = (
                by_key[(f"fixed:{variant}", "dr")].ci95,
                by_key[(f"fixed:{variant}", "ips")].ci95,
            )
            assert dr_ci[1] - dr_ci[0] <= ips_ci[1] - ips_ci[0] + 1e-9


def test_the_logged_policy_is_its_observed_mean_and_learned_bandits_are_evaluated() -> None:
    records = logged_run(0, 600)
    log = LoggedDecisions.from_records(records, actions=VARIANTS)
    candidates = [
        LearnedBandit("context_free", lambda: LinUCB([], alpha=1.0, epsilon=0.05), False),
        LearnedBandit("contextual", lambda: LinUCB(FEATURES, alpha=1.0, epsilon=0.05)),
    ]
    found = evaluate_policies(log, candidates, [DoublyRobust()], metrics=["reward", "csat"])
    by_key = {(e.policy, e.metric): e for e in found}
    logged = by_key[("logged", "reward")]
    assert logged.value == pytest.approx(np.mean([r["feedback"]["reward"] for r in records]))
    assert logged.ess == pytest.approx(600)
    for name in ("context_free", "contextual"):
        csat = by_key[(name, "csat")]
        assert 1.0 <= csat.ci95[0] < csat.value < csat.ci95[1] <= 5.0
        assert csat.unsupported == 0.0  # the logger never was deterministic


def _always_concise() -> LoggedDecisions:
    """30 users, each served ``concise`` by a deterministic logger (a fixed control)."""
    records = [
        {"user_id": f"u{i}", "variant": "concise", "propensity": 1.0, "context": {},
         "feedback": {"reward": 0.5 + 0.1 * (i % 3)}}
        for i in range(30)
    ]  # fmt: skip
    return LoggedDecisions.from_records(records, actions=VARIANTS)


def test_a_deterministic_logger_leaves_other_variants_unsupported() -> None:
    log = _always_concise()
    found = evaluate_policies(log, [FixedVariant("empathetic")], [InverseProbabilityWeighting()])
    estimate = next(e for e in found if e.policy == "fixed:empathetic")
    assert estimate.unsupported == 1.0 and estimate.ess == 0.0


def test_bad_logged_data_is_refused() -> None:
    one = np.array([1.0])
    with pytest.raises(ValueError, match="propensities must be within"):
        InverseProbabilityWeighting().estimate_policy_value(
            one, np.array([0]), np.array([0.0]), np.array([[1.0]])
        )
    with pytest.raises(ValueError, match="estimated_rewards"):
        DoublyRobust().estimate_policy_value(one, np.array([0]), one, np.array([[1.0]]))
    with pytest.raises(ValueError, match="folds"):
        evaluate_policies(LoggedDecisions.from_records([]), [], [], folds=1)


def test_clipping_caps_the_weights() -> None:
    reward, action = np.array([1.0, 0.0]), np.array([0, 1])
    pscore = np.array([0.01, 0.99])
    first = np.array([[1.0, 0.0], [1.0, 0.0]])
    unclipped = InverseProbabilityWeighting().estimate_policy_value(reward, action, pscore, first)
    clipped = InverseProbabilityWeighting(clip=10.0).estimate_policy_value(
        reward, action, pscore, first
    )
    assert unclipped.value == pytest.approx(50.0) and clipped.value == pytest.approx(5.0)


def _uniform(users: list[str], per_user: int, context: dict | None = None) -> list[dict]:
    return [
        {"user_id": u, "variant": VARIANTS[(i + j) % 2], "propensity": 0.5,
         "context": dict(context or {}), "feedback": {"reward": float((i + j) % 3 == 0)}}
        for j, u in enumerate(users) for i in range(per_user)
    ]  # fmt: skip


EVERY = [InverseProbabilityWeighting(), SelfNormalizedIPS(), DoublyRobust()]


def test_a_policy_without_logged_support_has_no_value_and_the_others_keep_theirs() -> None:
    log = _always_concise()
    policies_ = [FixedVariant("concise"), FixedVariant("empathetic")]
    found = evaluate_policies(log, policies_, EVERY, metrics=["reward"])
    unsupported = [e for e in found if e.policy == "fixed:empathetic"]
    assert {e.estimator for e in unsupported} == {"ips", "snips", "dr"}
    for e in unsupported:  # IPS's mean(0 * r) = 0 is no measurement either
        assert e.value is None and e.ci95 is None and e.ess == 0.0
        assert e.note.startswith("no logged support")
    kept = [e for e in found if e.policy == "fixed:concise"]
    assert len(kept) == 3 and all(e.value == pytest.approx(0.6) and e.ci95 for e in kept)


def test_one_user_gets_no_interval_and_no_doubly_robust_value() -> None:
    log = LoggedDecisions.from_records(_uniform(["u1"], 40), actions=VARIANTS)
    found = evaluate_policies(log, [FixedVariant(VARIANTS[0])], EVERY, metrics=["reward"])
    by_estimator = {e.estimator: e for e in found}
    for name in ("on_policy", "ips", "snips"):
        e = by_estimator[name]
        assert e.value is not None and e.ci95 is None
        assert e.note == "no interval: 1 user; an interval needs at least 2"
    assert by_estimator["dr"].value is None and by_estimator["dr"].note == evaluate.ONE_FOLD


def test_users_all_in_one_fold_are_not_cross_fitted_on_themselves() -> None:
    users = ["u0", "u1", "u2", "u3"]  # crc32 % 2 == 0 for each: one fold holds them all
    log = LoggedDecisions.from_records(_uniform(users, 20), actions=VARIANTS)
    assert len(set(log.folds(2))) == 1
    learner = LearnedBandit("context_free", lambda: LinUCB([], alpha=1.0, epsilon=0.05), False)
    found = evaluate_policies(log, [FixedVariant(VARIANTS[0]), learner], EVERY, ["reward"])
    for e in found:
        if e.estimator == "dr" or e.policy == "context_free":
            assert e.value is None and e.note == evaluate.ONE_FOLD, e
        else:
            assert e.value is not None and e.ci95 is not None, e  # four users: an interval


def test_the_reward_model_does_not_read_the_logged_variants_own_features() -> None:
    # own_reward describes the logged variant (here: its very reward); as a feature of
    # q(x, a') for another variant it would leak the logged action's outcome.
    records = _uniform([f"u{i}" for i in range(8)], 10, {"vip": 1.0})
    for r in records:
        r["context"]["own_reward"] = r["feedback"]["reward"]
    log = LoggedDecisions.from_records(records, actions=VARIANTS)
    fold = log.folds(2)
    q = evaluate.cross_fitted_rewards(log, "reward", fold)
    for k in set(fold):
        assert np.allclose(q[fold == k], q[fold == k][0])  # the same context: the same q
