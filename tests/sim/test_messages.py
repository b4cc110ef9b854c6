from __future__ import annotations

import csv
import doctest
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from tailorbot.sim import CustomerPopulation, MessageSource, messages


@pytest.fixture(scope="module")
def banking77_test_rows() -> list[tuple[str, str]]:
    path = resources.files("tailorbot") / "data" / "banking77" / "test.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


def test_docstring_example_runs():
    assert doctest.testmod(messages).failed == 0


def test_draws_from_banking77_rows_deterministically(banking77_test_rows):
    source = MessageSource(banking77_test_rows)
    assert len(source.intents) == 77
    population = CustomerPopulation(size=20, seed=3, intents=source.intents)
    draws = [source.draw(np.random.default_rng(8), c.intents) for c in population]
    again = [source.draw(np.random.default_rng(8), c.intents) for c in population]
    assert draws == again
    assert all((text, intent) in set(banking77_test_rows) for text, intent in draws)


def test_customers_mostly_ask_about_their_recurring_intents(banking77_test_rows):
    source = MessageSource(banking77_test_rows, recurring_share=0.8)
    customer = CustomerPopulation(size=1, seed=0, intents=source.intents)[0]
    rng = np.random.default_rng(1)
    asked = [source.draw(rng, customer.intents)[1] for _ in range(3000)]
    # 0.8 recurring, plus the 3/77 of the uniform draws that hit a recurring intent anyway.
    expected = 0.8 + 0.2 * 3 / 77
    assert np.mean([i in customer.intents for i in asked]) == pytest.approx(expected, abs=0.03)


def test_unknown_recurring_intents_fall_back_to_uniform():
    source = MessageSource([("a", "x"), ("b", "y")], recurring_share=1.0)
    rng = np.random.default_rng(0)
    intents = {source.draw(rng, ["not_in_source"])[1] for _ in range(100)}
    assert intents == {"x", "y"}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "at least one"),
        ([("  ", "x")], "empty text"),
        ([("hi", "")], "empty intent"),
        ([("hi",)], "pair"),
    ],
)
def test_bad_rows_are_rejected(rows, message):
    with pytest.raises(ValueError, match=message):
        MessageSource(rows)


def test_the_demo_draws_messages_labelled_as_its_model_was_trained(tmp_path: Path) -> None:
    """A built-in intent the settings leave out is trained as out_of_scope: the simulated
    customers' messages carry that label too, not one the model was never taught."""
    from tailorbot.config import Settings
    from tailorbot.models.intent.dataset import BUILTIN_INTENTS
    from tailorbot.sim.demo import build_simulation

    kept = BUILTIN_INTENTS[:1]
    settings = Settings.load(data_dir=tmp_path, builtin_intents=kept)
    sim = build_simulation(None, settings, customers=5, seed=0)  # type: ignore[arg-type]
    intents = set(sim.messages.intents)
    assert set(kept) <= intents and not set(BUILTIN_INTENTS[1:]) & intents
