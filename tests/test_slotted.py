"""Frozen dataclasses built without their ``__init__`` (compiled.slotted_builder and the
compiled slot_layout / build_slotted) against the classes themselves."""

from __future__ import annotations

import dataclasses
import gc
import sys
from typing import Any

import pytest

from tailorbot import compiled
from tailorbot.compiled import slotted_builder
from tailorbot.models.bandit.base import Choice, choice_builder
from tailorbot.models.intent.base import (
    FallbackDecision,
    IntentPrediction,
    _prediction_builder,
    prediction_from_ranking,
)
from tests.native_support import loops, needs_build


@dataclasses.dataclass(frozen=True, slots=True)
class Unsorted:
    """Fields in an order their names do not sort in: CPython lays the slots out sorted."""

    zeta: Any
    alpha: Any
    mid: Any = None


@needs_build
def test_a_built_instance_equals_the_class_called_with_the_same_values() -> None:
    build = slotted_builder(Unsorted)
    assert build is not Unsorted
    made = build("z", "a", "m")
    assert made == Unsorted("z", "a", "m")
    assert (made.zeta, made.alpha, made.mid) == ("z", "a", "m")
    assert repr(made) == "Unsorted(zeta='z', alpha='a', mid='m')"
    assert hash(made) == hash(Unsorted("z", "a", "m"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.zeta = "other"  # type: ignore[misc]
    assert gc.is_tracked(made)


@needs_build
def test_the_serving_paths_predictions_and_choices_are_their_classes_own() -> None:
    ranking = [("card_arrival", 0.7), ("card_linking", 0.2)]
    fallback = FallbackDecision(False)
    built = _prediction_builder()("card_arrival", 0.7, ranking, fallback, "de", "affirm")
    assert type(built) is IntentPrediction
    assert built == IntentPrediction("card_arrival", 0.7, ranking, fallback, "de", "affirm")
    assert built.in_language("fr") == dataclasses.replace(built, language="fr")
    chosen = choice_builder()("concise", 0.25, {"concise": 1.0})
    assert type(chosen) is Choice and chosen == Choice("concise", 0.25, {"concise": 1.0})


def test_predictions_from_a_ranking_are_the_same_with_or_without_the_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tailorbot.models.intent.fallback import FallbackPolicy

    ranking = [("card_arrival", 0.51), ("card_linking", 0.49)]
    policy = FallbackPolicy(threshold=0.3, margin=0.05)
    made = prediction_from_ranking(ranking, policy)
    monkeypatch.setattr(compiled, "native", lambda: None)  # the Python path: the class itself
    assert slotted_builder(IntentPrediction) is IntentPrediction
    assert made == IntentPrediction("card_arrival", 0.51, ranking, policy.decide(ranking, None))


@needs_build
def test_values_are_held_once_and_let_go_with_the_instance() -> None:
    value = object()
    before = sys.getrefcount(value)
    build = slotted_builder(Unsorted)
    made = [build(value, value, value) for _ in range(100)]
    assert sys.getrefcount(value) == before + 300
    del made
    assert sys.getrefcount(value) == before


@needs_build
def test_a_build_takes_every_field_and_nothing_else() -> None:
    build = slotted_builder(Unsorted)
    with pytest.raises(TypeError, match="takes 3 values, not 2"):
        build("z", "a")
    with pytest.raises(TypeError, match="takes 3 values, not 4"):
        build("z", "a", "m", "extra")


@needs_build
def test_a_layout_is_only_made_for_a_class_of_object_slots_alone() -> None:
    assert loops is not None
    with pytest.raises(TypeError, match="has no slot 'beta'"):
        loops.slot_layout(Unsorted, ("zeta", "beta", "mid"))
    with pytest.raises(TypeError, match="named twice"):
        loops.slot_layout(Unsorted, ("zeta", "zeta", "mid"))
    with pytest.raises(TypeError, match="has 3 slots, not 2"):
        loops.slot_layout(Unsorted, ("zeta", "alpha"))

    class WithDict:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Inherited(Unsorted):
        extra: Any = None

    for cls in (WithDict, Inherited, int):
        with pytest.raises(TypeError):
            loops.slot_layout(cls, ())
    with pytest.raises((TypeError, ValueError)):
        loops.build_slotted(object(), 1, 2, 3)
    with pytest.raises((TypeError, ValueError)):
        loops.build_slotted()


def test_the_builder_refuses_what_it_cannot_build_without_init() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclasses.dataclass(slots=True)
    class Guarded:
        x: int

        def __setattr__(self, name: str, value: Any) -> None:
            if value is None:
                raise ValueError(name)
            object.__setattr__(self, name, value)

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            if self.x < 0:
                raise ValueError("x")

    @dataclasses.dataclass(frozen=True, slots=True)
    class Derived:
        x: int
        y: int = dataclasses.field(init=False, default=0)

    for cls in (NoSlots, Guarded, Checked, Derived, int):
        with pytest.raises(TypeError, match="not a dataclass of slots alone that __init__ fills"):
            slotted_builder(cls)


def test_a_dataclass_that_is_not_frozen_is_built_as_its_init_builds_it() -> None:
    @dataclasses.dataclass(slots=True)
    class Mutable:
        x: int
        y: list[int] = dataclasses.field(default_factory=list)

    built = slotted_builder(Mutable)(1, [2])
    assert built == Mutable(1, [2]) and type(built) is Mutable
    built.x = 5  # still mutable
    assert built.x == 5
