"""The personalize answer as plain data, compiled (csrc/payload.c) against its Python reference
(records.payload_in_python): the same keys in the same order, the same values of the same
types, for real decisions and for parts of other shapes."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import orjson
import pytest

from tailorbot.services.decisions import records
from tailorbot.services.decisions.schemas import PersonalizeRequest
from tailorbot.services.decisions.service import DecisionService
from tests.native_support import loops, needs_build
from tests.services.decisions.conftest import CARD_MESSAGE, OUT_OF_SCOPE_MESSAGES

compiled = getattr(loops, "answer_payload", None)  # None: not built (see native_support)


def kept_arguments(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch, messages: list[str]
) -> list[tuple[Any, ...]]:
    """The arguments of personalize_payload in real decisions of ``messages``."""
    kept: list[tuple[Any, ...]] = []
    real = records.personalize_payload

    def keeping(*args: Any) -> dict[str, Any]:
        kept.append(args)
        return real(*args)

    monkeypatch.setattr("tailorbot.services.decisions.service.personalize_payload", keeping)
    for i, message in enumerate(messages):
        user = f"u-payload-{i % 2}"
        service.personalize_payload(
            PersonalizeRequest(user_id=user, session_id="s", message=message)
        )
    return kept


def same(*args: Any) -> dict[str, Any]:
    got, want = records.personalize_payload(*args), records.payload_in_python(*args)
    assert got == want
    assert orjson.dumps(got) == orjson.dumps(want)  # the same types and key order
    return got


@needs_build
def test_the_compiled_answer_is_the_python_reference(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [CARD_MESSAGE, *OUT_OF_SCOPE_MESSAGES[:2], "hi", CARD_MESSAGE, "yes"]
    kept = kept_arguments(service, monkeypatch, messages)
    assert len(kept) == len(messages)
    for args in kept:
        decision, prediction, cited, view, profile, timings = args
        segment = view["segment"] if view is not None else None
        assert compiled(decision, prediction, cited, segment, True, timings) is not None
        same(*args)
        same(decision, prediction, cited, None, {"consent": {"personalization": False}}, timings)
    assert any(args[2] for args in kept)  # some cited an article


@needs_build
def test_parts_of_other_shapes_are_read_by_the_python_path(
    service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    decision, prediction, cited, view, profile, timings = kept_arguments(
        service, monkeypatch, [CARD_MESSAGE]
    )[0]
    assert cited  # an answer with articles, changed below
    # numbers of numpy's types are floats in the answer, on both paths
    decision = {**decision, "record": {**decision["record"], "propensity": np.float64(0.25)}}
    assert type(same(decision, prediction, cited, view, profile, timings)["response"]
                ["propensity"]) is float  # fmt: skip
    as_lists = [list(entry) for entry in cited]
    ranked_lists = dataclasses.replace(prediction, ranking=[list(p) for p in prediction.ranking])
    segment = view["segment"] if view is not None else None
    for odd in (
        (decision, prediction, as_lists, view, profile, timings),
        (decision, ranked_lists, cited, view, profile, timings),
    ):
        assert compiled(odd[0], odd[1], odd[2], segment, True, timings) is None
        same(*odd)
    with pytest.raises(KeyError):
        records.personalize_payload({"record": {}}, prediction, cited, view, profile, timings)
    with pytest.raises(TypeError, match="exactly 6 arguments"):
        compiled(decision)
