from __future__ import annotations

import doctest
from collections import Counter

import numpy as np
import pytest

from tailorbot.events.profile import UserProfile
from tailorbot.sim import CONTEXT_FEATURES, VARIANTS, CustomerPopulation, customers, typical_variant

INTENTS = [f"intent_{k}" for k in range(12)]


@pytest.fixture(scope="module")
def population() -> CustomerPopulation:
    return CustomerPopulation(size=5000, seed=21, intents=INTENTS)


def test_docstring_example_runs():
    assert doctest.testmod(customers).failed == 0


def test_same_seed_same_population_other_seed_other_population():
    first = CustomerPopulation(size=50, seed=4, intents=INTENTS)
    again = CustomerPopulation(size=50, seed=4, intents=INTENTS)
    other = CustomerPopulation(size=50, seed=5, intents=INTENTS)
    assert list(first) == list(again)
    assert list(first) != list(other)
    # Customer i depends only on (seed, i): a smaller population is a prefix of a larger one.
    assert list(CustomerPopulation(size=20, seed=4, intents=INTENTS)) == list(first)[:20]


def test_population_proportions(population):
    n = len(population)
    tiers = Counter(c.tier for c in population)
    # Standard deviation of a share p over 5000 customers is at most 0.007: 0.03 is > 4 sd.
    assert tiers["standard"] / n == pytest.approx(0.75, abs=0.03)
    assert tiers["gold"] / n == pytest.approx(0.18, abs=0.03)
    assert tiers["vip"] / n == pytest.approx(0.07, abs=0.03)
    languages = Counter(c.language for c in population)
    assert languages["en"] / n == pytest.approx(0.6, abs=0.03)
    assert sum(c.segment == "business" for c in population) / n == pytest.approx(0.2, abs=0.03)
    assert sum(c.frequent for c in population) / n == pytest.approx(0.1, abs=0.03)
    # Account ages are exponential with mean 400 days: P(age < 90) = 1 - exp(-89 / 400) = 0.2.
    assert sum(c.new_account for c in population) / n == pytest.approx(0.2, abs=0.03)
    assert min(c.patience for c in population) > 0.0 and max(c.patience for c in population) < 1.0


def test_preferences_follow_the_observable_rule_with_noise(population):
    follows = [
        c.preferred_variant == typical_variant(c.tier, c.segment, c.account_age_days)
        for c in population
    ]
    assert np.mean(follows) == pytest.approx(0.8, abs=0.03)
    assert {c.preferred_variant for c in population} == set(VARIANTS)
    # The rule depends on what a policy can observe: preferences differ between groups.
    new = Counter(c.preferred_variant for c in population if c.new_account)
    vip = Counter(c.preferred_variant for c in population if c.tier == "vip" and not c.new_account)
    assert new.most_common(1)[0][0] == "step_by_step"
    assert vip.most_common(1)[0][0] == "concise"


def test_typical_variant_rule():
    assert typical_variant("vip", "consumer", 30) == "step_by_step"
    assert typical_variant("gold", "consumer", 400) == "concise"
    assert typical_variant("standard", "business", 400) == "concise"
    assert typical_variant("standard", "consumer", 400) == "empathetic"


def test_no_preference_noise_means_the_rule_exactly():
    population = CustomerPopulation(size=300, seed=1, preference_noise=0.0)
    assert all(
        c.preferred_variant == typical_variant(c.tier, c.segment, c.account_age_days)
        for c in population
    )
    assert all(c.intents == () for c in population)


def test_frequent_contacters_get_in_touch_more_often(population):
    rng = np.random.default_rng(0)
    contacts = [population.next_customer(rng) for _ in range(4000)]
    frequent_share = np.mean([c.frequent for c in contacts])
    # 10% of customers with an 8x rate: about 0.1 * 8 / (0.9 + 0.8) = 47% of contacts.
    assert frequent_share > 0.35
    rng_again = np.random.default_rng(0)
    assert [population.next_customer(rng_again) for _ in range(50)] == contacts[:50]


def test_recurring_intents_profile_and_context(population):
    customer = population[0]
    assert len(customer.intents) == 3 and len(set(customer.intents)) == 3
    assert set(customer.intents) <= set(INTENTS)
    profile = UserProfile.model_validate(customer.profile())
    assert profile.tier == customer.tier and profile.language == customer.language
    assert profile.attributes["account_age_days"] == customer.account_age_days
    context = customer.context()
    assert tuple(context) == CONTEXT_FEATURES
    assert context["account_new"] == float(customer.account_age_days < 90)
    assert population.get(customer.user_id) is customer and population.get("nobody") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size"),
        ({"size": 5, "preference_noise": 2.0}, "preference_noise"),
        ({"size": 5, "frequent_share": -0.1}, "frequent_share"),
        ({"size": 5, "recurring_intents": 0}, "recurring_intents"),
        ({"size": 5, "tier_shares": {"gold": -1.0}}, "tier_shares"),
        ({"size": 5, "language_shares": {}}, "language_shares"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CustomerPopulation(**kwargs)
