"""A population of simulated customers (docs/simulator.md defines the model exactly).

Every customer has **observable** attributes a chatbot knows (tier and language from the
profile, the channel of the conversation, the account's age) and **hidden** ones: a hidden
segment (a *persona*), a per-customer random effect on each response variant, patience and
how often they get in touch. How much a customer likes each response variant (their
*utility*) is the persona's utility plus the individual effect. The persona's odds depend on
the observable attributes, so part of the preference follows what a chatbot can see; the
individual effect is visible only through the customer's own feedback. With
``null_world=True`` every customer has the same utilities (:data:`NULL_UTILITIES`), so no
policy can beat the best fixed variant.

Customer ``i`` of a population depends only on ``(seed, i)``: a population of 100 is the
first 100 customers of the same seed's population of 1000, and the null world has the same
customers (attributes, contact rates, intents) with the preferences flattened.

>>> population = CustomerPopulation(size=3, seed=1, intents=["card_arrival", "top_up_failed"])
>>> [c.user_id for c in population]
['sim-00000', 'sim-00001', 'sim-00002']
>>> population[0] == CustomerPopulation(size=10, seed=1,
...                                     intents=["card_arrival", "top_up_failed"])[0]
True
>>> sorted(population[0].profile()), sorted(population[0].request_context())
(['attributes', 'language', 'tier'], ['channel', 'language'])
>>> flat = CustomerPopulation(size=3, seed=1, intents=["card_arrival"], null_world=True)
>>> len({c.utilities for c in flat})
1
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

VARIANTS = ("concise", "step_by_step", "empathetic")
TIER_SHARES = {"standard": 0.75, "gold": 0.18, "vip": 0.07}
LANGUAGE_SHARES = {"en": 0.6, "es": 0.15, "de": 0.1, "fr": 0.1, "pt": 0.05}
CHANNEL_SHARES = {"chat": 0.65, "email": 0.25, "messaging": 0.10}
NEW_ACCOUNT_DAYS = 90
MEAN_ACCOUNT_AGE_DAYS = 400.0
PATIENCE_BETA = (4.0, 2.0)  # mean patience 2/3
FREQUENT_RATE_FACTOR = 8.0

# The hidden segment. Its log-odds are linear in the observable indicators below, so the
# observable attributes shift who is who without deciding it.
PERSONAS = ("guided", "brisk", "warm")
PERSONA_LOGITS: dict[str, dict[str, float]] = {
    "guided": {"bias": -0.5, "new_account": 2.0, "non_english": 1.0},
    "brisk": {"bias": -0.5, "premium_tier": 1.5, "email": 1.5},
    "warm": {"bias": 0.5, "messaging": 1.0},
}
# Each persona's utility of each variant (added to the rating's latent satisfaction and,
# scaled, to the resolution probability; see outcomes.py).
PERSONA_UTILITIES: dict[str, tuple[float, float, float]] = {
    #          concise  step_by_step  empathetic
    "guided": (-0.4, 0.6, -0.2),
    "brisk": (0.6, -0.4, -0.2),
    "warm": (-0.3, -0.1, 0.4),
}
INDIVIDUAL_SD = 0.35
# The null world: the default world's average utilities (rounded), the same for everyone.
NULL_UTILITIES = (-0.05, 0.0, 0.05)
NULL_PERSONA = "average"


@dataclass(frozen=True, slots=True)
class Customer:
    user_id: str
    # observable (what the chatbot's profile and the conversation carry)
    tier: str
    language: str
    channel: str
    account_age_days: int
    # hidden (what a policy has to learn from feedback)
    persona: str  # the hidden segment
    individual_effects: tuple[float, ...]  # per variant of VARIANTS, this customer's own taste
    utilities: tuple[float, ...]  # per variant of VARIANTS: persona utility + individual effect
    patience: float  # 0 (leaves at the first hiccup) .. 1 (unbothered)
    contact_rate: float  # expected conversations per day
    frequent: bool  # one of the frequent contacters
    intents: tuple[str, ...]  # recurring intents, most frequent first

    @property
    def new_account(self) -> bool:
        return self.account_age_days < NEW_ACCOUNT_DAYS

    @property
    def preferred_variant(self) -> str:
        """The variant with the highest utility."""
        return VARIANTS[int(np.argmax(self.utilities))]

    def utility(self, variant: str) -> float:
        """How much the customer likes ``variant``; one the simulator does not know counts as
        the customer's least liked."""
        if variant in VARIANTS:
            return self.utilities[VARIANTS.index(variant)]
        return min(self.utilities)

    def profile(self) -> dict[str, object]:
        """The observable profile as a ``PUT /v1/users/{id}`` body."""
        return {
            "tier": self.tier,
            "language": self.language,
            "attributes": {"account_age_days": self.account_age_days},
        }

    def request_context(self) -> dict[str, str]:
        """What the chatbot sends with each message (``PersonalizeRequest.context``)."""
        return {"channel": self.channel, "language": self.language}

    def observables(self) -> dict[str, float]:
        """The observable indicators the persona's odds depend on (:data:`PERSONA_LOGITS`)."""
        observable = {"tier": self.tier, "language": self.language, "channel": self.channel}
        return _indicators(observable, self.new_account)


def persona_probabilities(observables: Mapping[str, float]) -> dict[str, float]:
    """P(persona | observable indicators): a softmax of :data:`PERSONA_LOGITS`."""
    logits = np.array(
        [sum(w * observables.get(k, 0.0) for k, w in PERSONA_LOGITS[p].items()) for p in PERSONAS]
    )
    weights = np.exp(logits - logits.max())
    return dict(zip(PERSONAS, (weights / weights.sum()).tolist(), strict=True))


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
    tier_shares, language_shares, channel_shares
        Probability of each value (normalised).
    individual_sd
        Standard deviation of each customer's own effect on each variant's utility.
    null_world
        Every customer gets :data:`NULL_UTILITIES` (no persona, no individual effect).
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
        channel_shares: Mapping[str, float] = CHANNEL_SHARES,
        individual_sd: float = INDIVIDUAL_SD,
        null_world: bool = False,
        frequent_share: float = 0.1,
        recurring_intents: int = 3,
        id_prefix: str = "sim",
    ) -> None:
        self.size = size
        self.seed = seed
        self.intents = intents
        self.tier_shares = tier_shares
        self.language_shares = language_shares
        self.channel_shares = channel_shares
        self.individual_sd = individual_sd
        self.null_world = null_world
        self.frequent_share = frequent_share
        self.recurring_intents = recurring_intents
        self.id_prefix = id_prefix
        if not (isinstance(size, int) and size >= 1):
            raise ValueError(f"size must be a positive integer, got {size!r}")
        if not (math.isfinite(individual_sd) and individual_sd >= 0):
            raise ValueError(f"individual_sd must be a number >= 0, got {individual_sd!r}")
        if not 0.0 <= frequent_share <= 1.0:
            raise ValueError(f"frequent_share must be within [0, 1], got {frequent_share!r}")
        if recurring_intents < 1:
            raise ValueError(f"recurring_intents must be >= 1, got {recurring_intents!r}")
        self._tiers = _shares("tier_shares", tier_shares)
        self._languages = _shares("language_shares", language_shares)
        self._channels = _shares("channel_shares", channel_shares)
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
        # Every draw happens in the same order in both worlds, so customer i of the null
        # world is customer i of the default world with flattened preferences.
        rng = np.random.default_rng([self.seed, i])
        tier = _draw(rng, self._tiers)
        language = _draw(rng, self._languages)
        channel = _draw(rng, self._channels)
        account_age_days = 1 + int(rng.exponential(MEAN_ACCOUNT_AGE_DAYS))
        observable = {"tier": tier, "language": language, "channel": channel}
        persona_odds = persona_probabilities(
            _indicators(observable, account_age_days < NEW_ACCOUNT_DAYS)
        )
        persona = PERSONAS[_pick(rng, _cdf(np.array(list(persona_odds.values()))))]
        effects = rng.normal(0.0, 1.0, size=len(VARIANTS)) * self.individual_sd
        if self.null_world:
            persona, effects = NULL_PERSONA, np.zeros(len(VARIANTS))
            utilities = np.array(NULL_UTILITIES)
        else:
            utilities = np.array(PERSONA_UTILITIES[persona]) + effects
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
            channel=channel,
            account_age_days=account_age_days,
            persona=persona,
            individual_effects=tuple(float(e) for e in effects),
            utilities=tuple(round(float(u), 6) for u in utilities),
            patience=patience,
            contact_rate=contact_rate,
            frequent=frequent,
            intents=tuple(self._intents[int(k)] for k in picks),
        )

    def __repr__(self) -> str:
        world = ", null_world=True" if self.null_world else ""
        return f"CustomerPopulation(size={self.size}, seed={self.seed}{world})"


def _indicators(observable: Mapping[str, str], new_account: bool) -> dict[str, float]:
    return {
        "bias": 1.0,
        "new_account": float(new_account),
        "non_english": float(observable["language"] != "en"),
        "premium_tier": float(observable["tier"] in ("gold", "vip")),
        "email": float(observable["channel"] == "email"),
        "messaging": float(observable["channel"] == "messaging"),
    }


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
