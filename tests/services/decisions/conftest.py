"""Shared set-up of the decision-plane tests: one small intent model per session.

The model is trained once (15 Banking77 intents x 40 rows plus the bundled out-of-scope rows,
a few seconds) and saved into each test's own data directory, so every test gets a fresh
log, store and bandit but no test pays for training. The API and client tests import the
helpers from here.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tailorbot.config import Settings
from tailorbot.models import registry
from tailorbot.models.intent.dataset import IntentDataset, bundled_dataset
from tailorbot.models.intent.training import TrainedIntentModel, train_intent_model
from tailorbot.runtime import Runtime
from tailorbot.services.decisions import DecisionService
from tailorbot.services.decisions.schemas import (
    FeedbackRequest,
    PersonalizeRequest,
    PersonalizeResponse,
)

INTENTS = (
    "activate_my_card",
    "balance_not_updated_after_bank_transfer",
    "card_arrival",
    "card_payment_fee_charged",
    "cash_withdrawal_charge",
    "change_pin",
    "compromised_card",
    "declined_card_payment",
    "exchange_rate",
    "lost_or_stolen_card",
    "pending_card_payment",
    "request_refund",
    "top_up_failed",
    "transfer_not_received_by_recipient",
    "wrong_amount_of_cash_received",
)
ROWS_PER_INTENT = 40
WAIT_S = 30.0  # generous bound for a background write on a busy machine
CARD_MESSAGE = "my new card has still not arrived, where is it?"
SEED = 7

# Clearly not about banking: the small model sends each of these to out_of_scope.
OUT_OF_SCOPE_MESSAGES = (
    "what's the weather in Paris tomorrow",
    "tell me a joke",
    "who won the football match yesterday",
    "recommend a good pizza recipe",
)


def banking_slice() -> IntentDataset:
    """The first ``ROWS_PER_INTENT`` Banking77 training rows of each of ``INTENTS``."""
    banking = bundled_dataset("banking77", "train")
    taken: dict[str, int] = {}
    rows = []
    for i, label in enumerate(banking.labels):
        if label in INTENTS and taken.get(label, 0) < ROWS_PER_INTENT:
            rows.append(i)
            taken[label] = taken.get(label, 0) + 1
    return banking.subset(rows)


@functools.lru_cache(maxsize=1)
def small_intent_model() -> TrainedIntentModel:
    """Trained once per test session (the cache), shared read-only by every test."""
    data = banking_slice() + bundled_dataset("out_of_scope", "train")
    return train_intent_model(data, seed=SEED)


def save_model(data_dir: Path) -> str:
    """Put the session's model into ``data_dir``; returns its registry version."""
    trained = small_intent_model()
    return registry.save(data_dir, trained.model, trained.metadata, kind="intent").version


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    """Test settings: seeded, bandit statistics re-read on every decision."""
    values: dict[str, Any] = {"seed": SEED, "bandit_sync_s": 0.0, "partitions": 4}
    values.update(overrides)
    return Settings.load(data_dir=data_dir, **values)


def ask(
    service: DecisionService,
    user_id: str,
    message: str,
    session_id: str = "s1",
    context: dict[str, Any] | None = None,
) -> PersonalizeResponse:
    """Personalize, and wait until the recorder wrote the decision (tests then read it)."""
    request = PersonalizeRequest.model_validate(
        {"user_id": user_id, "session_id": session_id, "message": message, "context": context or {}}
    )
    answer = service.personalize(request)
    assert service.recorder.wait_written(answer.decision_id, timeout_s=WAIT_S)
    return answer


def tell(service: DecisionService, decision_id: str, **signals: Any) -> Any:
    return service.feedback(FeedbackRequest(decision_id=decision_id, **signals))


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A bare runtime (no decision service, no worker thread) for the recorder's tests."""
    built = Runtime(Settings.load(data_dir=tmp_path, run_worker_in_server=False, partitions=4))
    yield built
    built.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory holding the small intent model."""
    save_model(tmp_path)
    return tmp_path


_RUNTIMES: weakref.WeakKeyDictionary[DecisionService, Runtime] = weakref.WeakKeyDictionary()


def runtime_of(service: DecisionService) -> Runtime:
    """The runtime a test's decision service was built by (its log, stores, services)."""
    return _RUNTIMES[service]


def _open(settings: Settings, worker: bool) -> tuple[Runtime, DecisionService]:
    runtime = Runtime(settings)
    try:
        service = runtime.load_decisions()
    except BaseException:
        runtime.stop()
        raise
    _RUNTIMES[service] = runtime
    if worker:
        runtime.start_workers()
    return runtime, service


@pytest.fixture
def make_service(data_dir: Path) -> Iterator[Any]:
    """``make_service(worker=False, **settings)`` -> (runtime, service); all stopped afterwards."""
    opened: list[tuple[Runtime, DecisionService]] = []

    def make(worker: bool = False, **overrides: Any) -> tuple[Runtime, DecisionService]:
        overrides.setdefault("run_worker_in_server", worker)
        runtime, service = _open(settings_for(data_dir, **overrides), worker)
        opened.append((runtime, service))
        return runtime, service

    yield make
    for runtime, service in opened:
        service.close()
        runtime.stop()


@pytest.fixture
def service(make_service: Any) -> DecisionService:
    """A decision service without a stream worker (feature records stay empty)."""
    return make_service()[1]


@pytest.fixture
def live_service(make_service: Any) -> DecisionService:
    """A decision service whose runtime runs a stream worker in a background thread."""
    return make_service(worker=True)[1]
