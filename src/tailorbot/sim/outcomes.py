"""How a simulated customer reacts to the chatbot's answer (see docs/simulator.md).

One conversation turn is judged in three steps, each drawn from a seeded generator:

1. **Article click.** If the offered list holds an article that serves the true intent, the
   customer clicks the first such one with probability ``click_serving * click_rank_decay**r``
   (``r`` its 0-based rank) and finds it helpful with probability ``helpful_serving``.
   Otherwise (or if they skipped it) they click a random non-serving offered article with
   probability ``click_other``, helpful with probability ``helpful_other``.
2. **Resolution.** The base probability depends on what the bot did: ``resolve_handoff``
   (a human took over), ``resolve_correct`` (intent understood), ``resolve_fallback`` (the
   bot asked to rephrase) or ``resolve_wrong`` (it answered the wrong intent). Unless there
   was a handoff, the response variant adds ``fit_resolve * u`` where ``u`` is the
   customer's utility of the variant (:meth:`Customer.utility`, roughly -1..1). A helpful
   article then closes ``helpful_resolve_lift`` of the remaining gap:
   ``p = 1 - (1 - p) * (1 - lift)``.
3. **Rating.** A latent satisfaction ``rating_base``, plus ``rating_resolved`` or minus
   ``rating_unresolved``, plus ``rating_fit * u`` for the variant (not on handoff), minus
   ``rating_friction * (1 - patience)`` when the bot fell back,
   handed off or misread the intent, plus ``rating_helpful`` for a helpful article, plus
   Gaussian noise of scale ``rating_noise``; rounded and clipped to 1..5.

The model reads nothing but the customer and what the bot answered: never the policy's state.

>>> from tailorbot.sim.customers import CustomerPopulation
>>> customer = CustomerPopulation(size=1, seed=3, intents=["card_arrival"])[0]
>>> model = OutcomeModel(article_intents={"kb-card": "card_arrival", "kb-fx": "exchange_rate"})
>>> outcome = model.react(customer, true_intent="card_arrival", predicted_intent="card_arrival",
...                       articles=["kb-fx", "kb-card"], variant=customer.preferred_variant,
...                       rng=np.random.default_rng(0))
>>> outcome.rating in range(1, 6), outcome.clicked_article in {None, "kb-fx", "kb-card"}
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tailorbot.sim.customers import Customer

ArticleIntents = Mapping[str, str | Collection[str]] | Callable[[str], str | Collection[str] | None]


@dataclass(frozen=True, slots=True)
class Outcome:
    rating: int  # CSAT 1..5
    resolved: bool
    clicked_article: str | None  # the offered article the customer opened, if any
    helpful: bool | None  # their verdict on it; None when nothing was clicked


class OutcomeModel:
    """The customer-reaction model; every probability is a constructor argument.

    Parameters
    ----------
    article_intents
        Which intents each article serves: a mapping ``article_id -> intent | intents`` or a
        callable returning the same (``None`` for an unknown article). The KB provides it.
    """

    def __init__(
        self,
        article_intents: ArticleIntents,
        click_serving: float = 0.6,
        click_rank_decay: float = 0.8,
        helpful_serving: float = 0.85,
        click_other: float = 0.15,
        helpful_other: float = 0.1,
        resolve_handoff: float = 0.85,
        resolve_correct: float = 0.7,
        resolve_fallback: float = 0.2,
        resolve_wrong: float = 0.05,
        fit_resolve: float = 0.1,
        helpful_resolve_lift: float = 0.6,
        rating_base: float = 3.0,
        rating_resolved: float = 1.2,
        rating_unresolved: float = 1.0,
        rating_fit: float = 1.0,
        rating_friction: float = 1.0,
        rating_helpful: float = 0.3,
        rating_noise: float = 0.6,
    ) -> None:
        self.article_intents = article_intents
        self.click_serving = click_serving
        self.click_rank_decay = click_rank_decay
        self.helpful_serving = helpful_serving
        self.click_other = click_other
        self.helpful_other = helpful_other
        self.resolve_handoff = resolve_handoff
        self.resolve_correct = resolve_correct
        self.resolve_fallback = resolve_fallback
        self.resolve_wrong = resolve_wrong
        self.fit_resolve = fit_resolve
        self.helpful_resolve_lift = helpful_resolve_lift
        self.rating_base = rating_base
        self.rating_resolved = rating_resolved
        self.rating_unresolved = rating_unresolved
        self.rating_fit = rating_fit
        self.rating_friction = rating_friction
        self.rating_helpful = rating_helpful
        self.rating_noise = rating_noise
        probabilities = (
            "click_serving", "click_rank_decay", "helpful_serving", "click_other",
            "helpful_other", "resolve_handoff", "resolve_correct", "resolve_fallback",
            "resolve_wrong", "fit_resolve", "helpful_resolve_lift",
        )  # fmt: skip
        for name in probabilities:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability within [0, 1], got {value!r}")
        if not rating_fit >= 0:
            raise ValueError(f"rating_fit must be >= 0, got {rating_fit!r}")
        if rating_noise < 0:
            raise ValueError(f"rating_noise must be >= 0, got {rating_noise!r}")
        if not (callable(article_intents) or isinstance(article_intents, Mapping)):
            raise TypeError("article_intents must be a mapping or a callable")

    def serves(self, article_id: str, intent: str) -> bool:
        """Whether the article serves ``intent`` according to ``article_intents``."""
        source = self.article_intents
        served = source.get(article_id) if isinstance(source, Mapping) else source(article_id)
        if served is None:
            return False
        if isinstance(served, str):
            return served == intent
        return intent in served

    def resolve_probability(
        self,
        customer: Customer,
        *,
        intent_correct: bool,
        fallback: bool,
        handoff: bool,
        variant: str,
        helpful: bool,
    ) -> float:
        """Step 2 of the model: the probability the conversation gets resolved."""
        if handoff:
            p = self.resolve_handoff
        else:
            if fallback:
                p = self.resolve_fallback
            elif intent_correct:
                p = self.resolve_correct
            else:
                p = self.resolve_wrong
            p += self.fit_resolve * customer.utility(variant)
        p = min(max(p, 0.0), 1.0)
        if helpful:
            p = 1.0 - (1.0 - p) * (1.0 - self.helpful_resolve_lift)
        return p

    def react(
        self,
        customer: Customer,
        *,
        true_intent: str,
        predicted_intent: str | None,
        variant: str,
        rng: np.random.Generator,
        articles: Sequence[str] = (),
        fallback: bool = False,
        handoff: bool = False,
    ) -> Outcome:
        """Draw the customer's reaction to one answer.

        ``predicted_intent`` is what the bot answered (``None`` counts as a fallback);
        ``fallback`` means it asked the customer to rephrase, ``handoff`` that a human agent
        took over; ``articles`` are the offered KB article ids in rank order.
        """
        fallback = fallback or predicted_intent is None
        intent_correct = not fallback and predicted_intent == true_intent
        clicked, helpful = self._click(articles, true_intent, rng)
        p_resolved = self.resolve_probability(
            customer,
            intent_correct=intent_correct,
            fallback=fallback,
            handoff=handoff,
            variant=variant,
            helpful=bool(helpful),
        )
        resolved = bool(rng.random() < p_resolved)
        satisfaction = self.rating_base
        satisfaction += self.rating_resolved if resolved else -self.rating_unresolved
        if not handoff:
            satisfaction += self.rating_fit * customer.utility(variant)
        if handoff or not intent_correct:
            satisfaction -= self.rating_friction * (1.0 - customer.patience)
        if helpful:
            satisfaction += self.rating_helpful
        satisfaction += rng.normal(0.0, self.rating_noise) if self.rating_noise else 0.0
        rating = int(min(max(round(satisfaction), 1), 5))
        return Outcome(rating=rating, resolved=resolved, clicked_article=clicked, helpful=helpful)

    def _click(
        self, articles: Sequence[str], true_intent: str, rng: np.random.Generator
    ) -> tuple[str | None, bool | None]:
        """Step 1 of the model: which offered article gets opened, and whether it helped."""
        serving = [rank for rank, a in enumerate(articles) if self.serves(a, true_intent)]
        if serving:
            rank = serving[0]
            if rng.random() < self.click_serving * self.click_rank_decay**rank:
                return articles[rank], bool(rng.random() < self.helpful_serving)
        others = [a for a in articles if not self.serves(a, true_intent)]
        if others and rng.random() < self.click_other:
            article = others[int(rng.integers(len(others)))]
            return article, bool(rng.random() < self.helpful_other)
        return None, None
