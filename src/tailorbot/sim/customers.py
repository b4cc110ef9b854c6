"""A population of simulated customers (see docs/simulator.md for the full model).

Every customer has observable attributes (tier, language, segment, account age), which a
chatbot would know from the user profile, and hidden ones the policy has to learn: the
preferred response variant, patience, and how often they get in touch. The preferred
variant follows a rule on the observable attributes, broken for a share of customers by
individual taste, so a contextual policy can learn it and a context-free one cannot.

Customer ``i`` of a population depends only on ``(seed, i)``: a population of 100 is the
first 100 customers of the same seed's population of 1000.

>>> population = CustomerPopulation(size=3, seed=1, intents=["card_arrival", "top_up_failed"])
>>> [c.user_id for c in population]
['sim-00000', 'sim-00001', 'sim-00002']
>>> population[0] == CustomerPopulation(size=10, seed=1,
...                                     intents=["card_arrival", "top_up_failed"])[0]
True
>>> sorted(population[0].profile())
['attributes', 'language', 'tier']
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

VARIANTS = ("concise", "step_by_step", "empathetic")
TIER_SHARES = {"standard": 0.75, "gold": 0.18, "vip": 0.07}
LANGUAGE_SHARES = {"en": 0.6, "es": 0.15, "de": 0.1, "fr": 0.1, "pt": 0.05}
SEGMENT_SHARES = {"consumer": 0.8, "business": 0.2}
NEW_ACCOUNT_DAYS = 90
MEAN_ACCOUNT_AGE_DAYS = 400.0
PATIENCE_BETA = (4.0, 2.0)  # mean patience 2/3
FREQUENT_RATE_FACTOR = 8.0

# Observable features a policy can use offline (``Customer.context``), in a fixed order.
CONTEXT_FEATURES = (
    "tier_gold",
    "tier_vip",
    "segment_business",
    "account_new",
    "account_age_years",
)


@dataclass(frozen=True, slots=True)
class Customer:
    user_id: str
    # observable (what the chatbot's profile holds)
    tier: str
    language: str
    segment: str
    account_age_days: int
    # hidden (what a policy has to learn)
    preferred_variant: str
    patience: float  # 0 (leaves at the first hiccup) .. 1 (unbothered)
    contact_rate: float  # expected conversations per day
    frequent: bool  # one of the frequent contacters
    intents: tuple[str, ...]  # recurring intents, most frequent first

    @property
    def new_account(self) -> bool:
        return self.account_age_days < NEW_ACCOUNT_DAYS

    def profile(self) -> dict[str, object]:
        """The observable attributes as a ``PUT /v1/users/{id}`` body."""
        return {
            "tier": self.tier,
            "language": self.language,
            "attributes": {
                "segment": self.segment,
                "account_age_days": self.account_age_days,
                "new_account": self.new_account,
            },
        }

    def context(self) -> dict[str, float]:
        """The observable attributes as named floats (:data:`CONTEXT_FEATURES`)."""
        return {
            "tier_gold": float(self.tier == "gold"),
            "tier_vip": float(self.tier == "vip"),
            "segment_business": float(self.segment == "business"),
            "account_new": float(self.new_account),
            "account_age_years": self.account_age_days / 365.0,
        }


def typical_variant(tier: str, segment: str, account_age_days: int) -> str:
    """The variant the population rule prefers for these observable attributes.

    New accounts want guidance (``step_by_step``); established gold/VIP or business customers
    want to be done quickly (``concise``); everyone else wants to be heard (``empathetic``).
    """
    if account_age_days < NEW_ACCOUNT_DAYS:
        return "step_by_step"
    if tier in ("gold", "vip") or segment == "business":
        return "concise"
    return "empathetic"


class CustomerPopulation:
    """A seeded population of simulated customers.

    Parameters
    ----------
    size
        Number of customers.
    seed
        Seed: the same seed, size and intents give the same customers.
    intents
        The intents customers may ask about; each customer gets ``recurring_intents`` of them.
    tier_shares, language_shares, segment_shares
        Probability of each value (normalised).
    preference_noise
        Share of customers whose preferred variant ignores the population rule and is drawn
        uniformly from the other variants instead.
    frequent_share
        Share of frequent contacters, whose contact rate is multiplied by 8.
    recurring_intents
        How many recurring intents each customer has (at most ``len(intents)``).
    id_prefix
        User ids are ``f"{id_prefix}-{i:05d}"``.
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        intents: Sequence[str] = (),
        tier_shares: Mapping[str, float] = TIER_SHARES,
        language_shares: Mapping[str, float] = LANGUAGE_SHARES,
        segment_shares: Mapping[str, float] = SEGMENT_SHARES,
        preference_noise: float = 0.2,
        frequent_share: float = 0.1,
        recurring_intents: int = 3,
        id_prefix: str = "sim",
    ) -> None:
        self.size = size
        self.seed = seed
        self.intents = intents
        self.tier_shares = tier_shares
        self.language_shares = language_shares
        self.segment_shares = segment_shares
        self.preference_noise = preference_noise
        self.frequent_share = frequent_share
        self.recurring_intents = recurring_intents
        self.id_prefix = id_prefix
        if not (isinstance(size, int) and size >= 1):
            raise ValueError(f"size must be a positive integer, got {size!r}")
        if not 0.0 <= preference_noise <= 1.0:
            raise ValueError(f"preference_noise must be within [0, 1], got {preference_noise!r}")
        if not 0.0 <= frequent_share <= 1.0:
            raise ValueError(f"frequent_share must be within [0, 1], got {frequent_share!r}")
        if recurring_intents < 1:
            raise ValueError(f"recurring_intents must be >= 1, got {recurring_intents!r}")
        self._tiers = _shares("tier_shares", tier_shares)
        self._languages = _shares("language_shares", language_shares)
        self._segments = _shares("segment_shares", segment_shares)
        self._intents = tuple(dict.fromkeys(intents))
        self._customers = [self._make(i) for i in range(size)]
        self._by_id = {c.user_id: c for c in self._customers}
        self._contact_cdf = _cdf(np.array([c.contact_rate for c in self._customers]))

    def __len__(self) -> int:
        return len(self._customers)

    def __iter__(self) -> Iterator[Customer]:
        return iter(self._customers)

    def __getitem__(self, index: int) -> Customer:
        return self._customers[index]

    def get(self, user_id: str) -> Customer | None:
        return self._by_id.get(user_id)

    def next_customer(self, rng: np.random.Generator) -> Customer:
        """Who gets in touch next: drawn in proportion to the contact rates."""
        return self._customers[_pick(rng, self._contact_cdf)]

    def _make(self, i: int) -> Customer:
        rng = np.random.default_rng([self.seed, i])
        tier = _draw(rng, self._tiers)
        language = _draw(rng, self._languages)
        segment = _draw(rng, self._segments)
        account_age_days = 1 + int(rng.exponential(MEAN_ACCOUNT_AGE_DAYS))
        preferred = typical_variant(tier, segment, account_age_days)
        if rng.random() < self.preference_noise:
            others = [v for v in VARIANTS if v != preferred]
            preferred = others[int(rng.integers(len(others)))]
        patience = float(rng.beta(*PATIENCE_BETA))
        frequent = bool(rng.random() < self.frequent_share)
        # Log-normal spread around one conversation a month, times 8 for frequent contacters.
        contact_rate = float(math.exp(rng.normal(math.log(1 / 30), 0.5)))
        if frequent:
            contact_rate *= FREQUENT_RATE_FACTOR
        count = min(self.recurring_intents, len(self._intents))
        picks = rng.permutation(len(self._intents))[:count]
        return Customer(
            user_id=f"{self.id_prefix}-{i:05d}",
            tier=tier,
            language=language,
            segment=segment,
            account_age_days=account_age_days,
            preferred_variant=preferred,
            patience=patience,
            contact_rate=contact_rate,
            frequent=frequent,
            intents=tuple(self._intents[int(k)] for k in picks),
        )

    def __repr__(self) -> str:
        return f"CustomerPopulation(size={self.size}, seed={self.seed})"


def _shares(name: str, shares: Mapping[str, float]) -> tuple[list[str], np.ndarray]:
    """Values and their cumulative probabilities, validated."""
    values = list(shares)
    weights = np.array([float(shares[v]) for v in values])
    if not values or (weights < 0).any() or not np.isfinite(weights).all() or weights.sum() <= 0:
        raise ValueError(f"{name} must map values to non-negative weights with a positive sum")
    return values, _cdf(weights)


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0  # no rounding gap above the last value
    return cdf


def _pick(rng: np.random.Generator, cdf: np.ndarray) -> int:
    """An index drawn with the probabilities ``cdf`` accumulates (one uniform draw)."""
    return int(np.searchsorted(cdf, rng.random(), side="right"))


def _draw(rng: np.random.Generator, shares: tuple[list[str], np.ndarray]) -> str:
    values, cdf = shares
    return values[_pick(rng, cdf)]
