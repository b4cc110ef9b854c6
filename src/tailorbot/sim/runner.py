"""Drive a tailorbot server with simulated customers, over its real HTTP API.

Each contact is one conversation: the customer's profile is set on first contact, a
``session_started`` event is sent, ``POST /v1/personalize`` answers the customer's message
(drawn from labelled rows the intent model never trained on), the customer reacts according
to :class:`~tailorbot.sim.outcomes.OutcomeModel`, the reaction goes back through
``POST /v1/feedback``, and ``session_ended`` closes the session. The run records what the
server answered and how long it took, as the chatbot saw it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from tailorbot.client import Client
from tailorbot.sim.customers import Customer, CustomerPopulation
from tailorbot.sim.messages import MessageSource
from tailorbot.sim.outcomes import OutcomeModel

OUT_OF_SCOPE = "out_of_scope"
# The API's fallback reasons that hand the customer over (docs/intent.md; the simulator sees
# only what a chatbot sees).
HANDOFF_REASONS = (OUT_OF_SCOPE, "unfamiliar")


@dataclass
class ContactRecord:
    user_id: str
    arm: str
    true_intent: str
    predicted_intent: str
    fallback: str | None
    variant: str
    preferred_variant: str
    rating: int
    resolved: bool
    latency_s: float


@dataclass
class SimulationResult:
    contacts: list[ContactRecord] = field(default_factory=list)
    elapsed_s: float = 0.0

    def _in_scope(self) -> list[ContactRecord]:
        return [c for c in self.contacts if c.true_intent != OUT_OF_SCOPE]

    def intent_accuracy(self) -> float:
        """Share of in-scope messages whose top intent was right (fallback or not)."""
        rows = self._in_scope()
        return sum(c.predicted_intent == c.true_intent for c in rows) / max(1, len(rows))

    def fallback_rate(self) -> float:
        return sum(c.fallback is not None for c in self.contacts) / max(1, len(self.contacts))

    def oos_recall(self) -> float | None:
        oos = [c for c in self.contacts if c.true_intent == OUT_OF_SCOPE]
        return sum(c.fallback is not None for c in oos) / len(oos) if oos else None

    def latency_ms(self, q: float) -> float:
        return float(np.percentile([c.latency_s for c in self.contacts], q) * 1000)

    def preferred_variant_share(self, arm: str, part: slice) -> float | None:
        """How often ``arm`` gave customers their hidden preferred variant, in a slice of time."""
        rows = [c for c in self.contacts if c.arm == arm][part]
        return sum(c.variant == c.preferred_variant for c in rows) / len(rows) if rows else None


class Simulation:
    """Simulated customers talking to the server behind ``client``.

    The plan (who writes, what, and the seed of their reaction) is drawn up front from
    ``seed``, then ``concurrency`` conversations run at a time, as several chatbot sessions
    would; each reaction draws from its own generator seeded by ``(seed, n)``.
    """

    def __init__(
        self,
        client: Client,
        population: CustomerPopulation,
        messages: MessageSource,
        outcomes: OutcomeModel,
        seed: int = 0,
        concurrency: int = 4,
        label_share: float = 0.0,
    ) -> None:
        if not 0.0 <= label_share <= 1.0:
            raise ValueError(f"label_share must be within [0, 1], got {label_share!r}")
        self.client = client
        self.population = population
        self.messages = messages
        self.outcomes = outcomes
        self.seed = seed
        self.concurrency = concurrency
        self.label_share = label_share
        self._rng = np.random.default_rng(seed)

    def plan(self, contacts: int) -> list[tuple[int, Customer, str, str]]:
        rng = self._rng
        out = []
        for n in range(contacts):
            customer = self.population.next_customer(rng)
            text, intent = self.messages.draw(rng, customer.intents)
            out.append((n, customer, text, intent))
        return out

    def run(
        self, contacts: int, on_contact: Callable[[int], None] | None = None
    ) -> SimulationResult:
        plan = self.plan(contacts)
        for user_id in sorted({customer.user_id for _, customer, _, _ in plan}):
            customer = self.population.get(user_id)
            if customer is not None:
                self.client.put_user(user_id, customer.profile())
        result = SimulationResult()
        done = 0
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for record in pool.map(self.contact, plan):
                result.contacts.append(record)
                done += 1
                if on_contact is not None:
                    on_contact(done)
        result.elapsed_s = time.perf_counter() - start
        return result

    def contact(self, step: tuple[int, Customer, str, str]) -> ContactRecord:
        n, customer, text, true_intent = step
        rng = np.random.default_rng([self.seed, n])
        user = customer.user_id
        session = f"{user}-c{n}"
        self.client.send_events([_event("session_started", user, session, customer.channel)])

        t0 = time.perf_counter()
        decision = self.client.personalize(user, session, text, customer.request_context())
        latency = time.perf_counter() - t0

        reason = decision.fallback.reason if decision.fallback.triggered else None
        handoff = reason in HANDOFF_REASONS
        outcome = self.outcomes.react(
            customer,
            true_intent=true_intent,
            predicted_intent=None if reason else decision.intent.name,
            variant=decision.response.variant,
            rng=rng,
            articles=[a.id for a in decision.articles],
            fallback=reason is not None and not handoff,
            handoff=handoff,
        )
        signals: dict[str, object] = {"rating": outcome.rating, "resolved": outcome.resolved}
        if outcome.clicked_article is not None:
            signals["clicked_article_id"] = outcome.clicked_article
            key = "helpful_article_id" if outcome.helpful else "unhelpful_article_id"
            signals[key] = outcome.clicked_article
        self.client.feedback(decision.decision_id, **signals)
        # The simulated chatbot hands out-of-scope questions to a human and says so.
        closing = [_event("handoff", user, session, customer.channel)] if handoff else []
        closing.append(_event("session_ended", user, session, customer.channel))
        if rng.random() < self.label_share:  # an agent reviews the conversation
            closing.append(
                _label(decision.decision_id, true_intent, user, session, customer.channel)
            )
        self.client.send_events(closing)
        return ContactRecord(
            user_id=user,
            arm=decision.experiment_arm,
            true_intent=true_intent,
            predicted_intent=decision.intent.name,
            fallback=reason,
            variant=decision.response.variant,
            preferred_variant=customer.preferred_variant,
            rating=outcome.rating,
            resolved=outcome.resolved,
            latency_s=latency,
        )


def _label(
    decision_id: str, intent: str, user: str, session: str, channel: str
) -> dict[str, object]:
    """The true intent, as an agent reviewing the conversation would record it."""
    return {
        **_event("intent_label", user, session, channel),
        "intent": intent,
        "decision_id": decision_id,
        "source": "agent",
    }


def _event(kind: str, user: str, session: str, channel: str) -> dict[str, object]:
    return {
        "type": kind,
        "channel": channel,
        "event_id": f"{session}-{kind}",
        "user_id": user,
        "session_id": session,
        "timestamp": datetime.now(UTC).isoformat(),
    }
