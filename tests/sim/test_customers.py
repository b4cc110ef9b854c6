from __future__ import annotations

import doctest
from collections import Counter

import numpy as np
import pytest

from tailorbot.events.profile import UserProfile
from tailorbot.sim import (
    NULL_UTILITIES,
    PERSONAS,
    VARIANTS,
    CustomerPopulation,
    customers,
    persona_probabilities,
)
from tailorbot.sim.customers import INDIVIDUAL_SD, PERSONA_UTILITIES

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
    assert sum(c.channel == "email" for c in population) / n == pytest.approx(0.25, abs=0.03)
    assert sum(c.frequent for c in population) / n == pytest.approx(0.1, abs=0.03)
    # Account ages are exponential with mean 400 days: P(age < 90) = 1 - exp(-89 / 400) = 0.2.
    assert sum(c.new_account for c in population) / n == pytest.approx(0.2, abs=0.03)
    assert min(c.patience for c in population) > 0.0 and max(c.patience for c in population) < 1.0


def test_preferences_follow_the_observable_attributes_in_part(population):
    # The persona's odds follow the observable attributes (docs/simulator.md, "Customers").
    new = Counter(c.persona for c in population if c.new_account)
    premium_email = Counter(
        c.persona for c in population if c.tier != "standard" and c.channel == "email"
    )
    assert new.most_common(1)[0][0] == "guided"
    assert premium_email.most_common(1)[0][0] == "brisk"
    # ... but do not decide them: every persona occurs among new accounts.
    assert set(new) == set(PERSONAS)
    assert {c.preferred_variant for c in population} == set(VARIANTS)


def test_part_of_each_preference_is_individual(population):
    # Within one persona, utilities still differ by customer: the individual effect.
    warm = np.array([c.utilities for c in population if c.persona == "warm"])
    assert warm.std(axis=0) == pytest.approx([INDIVIDUAL_SD] * 3, abs=0.03)
    effects = np.array([c.individual_effects for c in population])
    assert effects.mean(axis=0) == pytest.approx([0.0] * 3, abs=0.02)
    for c in list(population)[:50]:
        expected = np.array(PERSONA_UTILITIES[c.persona]) + np.array(c.individual_effects)
        assert c.utilities == pytest.approx(tuple(expected), abs=1e-6)
        assert c.preferred_variant == VARIANTS[int(np.argmax(c.utilities))]


def test_persona_probabilities_are_a_softmax_of_the_documented_logits():
    odds = persona_probabilities({"bias": 1.0, "new_account": 1.0})
    assert sum(odds.values()) == pytest.approx(1.0)
    logits = np.array([1.5, -0.5, 0.5])
    expected = np.exp(logits) / np.exp(logits).sum()
    assert [odds[p] for p in PERSONAS] == pytest.approx(expected.tolist())


def test_null_world_has_the_same_customers_with_the_same_preferences():
    default = CustomerPopulation(size=200, seed=3, intents=INTENTS)
    null = CustomerPopulation(size=200, seed=3, intents=INTENTS, null_world=True)
    assert {c.utilities for c in null} == {NULL_UTILITIES}
    assert {c.preferred_variant for c in null} == {"empathetic"}
    for a, b in zip(default, null, strict=True):
        assert (a.tier, a.language, a.channel, a.account_age_days) == (
            b.tier, b.language, b.channel, b.account_age_days,
        )  # fmt: skip
        assert (a.contact_rate, a.intents, a.patience) == (b.contact_rate, b.intents, b.patience)


def test_no_individual_effect_means_persona_utilities_exactly():
    population = CustomerPopulation(size=300, seed=1, individual_sd=0.0)
    assert all(c.utilities == PERSONA_UTILITIES[c.persona] for c in population)
    assert all(c.intents == () for c in population)


def test_frequent_contacters_get_in_touch_more_often(population):
    rng = np.random.default_rng(0)
    contacts = [population.next_customer(rng) for _ in range(4000)]
    frequent_share = np.mean([c.frequent for c in contacts])
    # 10% of customers with an 8x rate: about 0.1 * 8 / (0.9 + 0.8) = 47% of contacts.
    assert frequent_share > 0.35
    rng_again = np.random.default_rng(0)
    assert [population.next_customer(rng_again) for _ in range(50)] == contacts[:50]


def test_recurring_intents_profile_and_request_context(population):
    customer = population[0]
    assert len(customer.intents) == 3 and len(set(customer.intents)) == 3
    assert set(customer.intents) <= set(INTENTS)
    profile = UserProfile.model_validate(customer.profile())
    assert profile.tier == customer.tier and profile.language == customer.language
    assert profile.attributes["account_age_days"] == customer.account_age_days
    asked = customer.request_context()
    assert asked == {"channel": customer.channel, "language": customer.language}
    assert customer.observables()["new_account"] == float(customer.account_age_days < 90)
    assert population.get(customer.user_id) is customer and population.get("nobody") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size"),
        ({"size": 5, "individual_sd": -1.0}, "individual_sd"),
        ({"size": 5, "frequent_share": -0.1}, "frequent_share"),
        ({"size": 5, "recurring_intents": 0}, "recurring_intents"),
        ({"size": 5, "tier_shares": {"gold": -1.0}}, "tier_shares"),
        ({"size": 5, "language_shares": {}}, "language_shares"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CustomerPopulation(**kwargs)
