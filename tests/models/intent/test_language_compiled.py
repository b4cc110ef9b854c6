"""The compiled language identifier (csrc/language.c) against py3langid's own ``classify``."""

from __future__ import annotations

from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py3langid.langid import LanguageIdentifier

from tailorbot.models.intent import bundled_dataset
from tailorbot.models.intent.language import (
    DEFAULT_LANGUAGES,
    CompiledIdentifier,
    LanguageDetector,
    _identifier,
)
from tests.native_support import loops, needs_build

pytestmark = needs_build

SAMPLES = [
    "Wo ist meine Karte? Ich habe sie vor zwei Wochen bestellt.",
    "Où est ma carte ? Je l'ai commandée il y a deux semaines.",
    "¿Dónde está mi tarjeta? La pedí hace dos semanas.",
    "Dov'è la mia carta? L'ho ordinata due settimane fa.",
    "Waar is mijn kaart? Ik heb hem twee weken geleden besteld.",
    "Onde está o meu cartão? Encomendei há duas semanas.",
    "MY CARD HAS NOT ARRIVED YET",  # all upper case: read lowered
    "Cafe\u0301 crème",  # decomposed: read as NFC
    "\ud800 a lone surrogate",
    "😀😀😀",
    "",
    "x" * 3000,  # more features than the call keeps on its stack
]


@pytest.fixture(scope="module")
def compiled() -> CompiledIdentifier:
    identifier = _identifier(DEFAULT_LANGUAGES)
    assert isinstance(identifier, CompiledIdentifier)
    return identifier


@pytest.fixture(scope="module")
def reference(compiled: CompiledIdentifier) -> LanguageIdentifier:
    """py3langid's identifier over the same tables."""
    nextmove, row, output, ptc, pc = compiled.tables
    return LanguageIdentifier(
        ptc, pc, list(compiled.classes), nextmove, output.tolist(), norm_probs=True, tk_row=row
    )


def same_answer(
    compiled: CompiledIdentifier, reference: LanguageIdentifier, text: str, rel: float = 2e-5
) -> None:
    """The same language (but for a near tie) and probability, to ``rel``: py3langid sums
    the features' float32 rows with numpy's float32 vector product, whose rounding differs
    from the C's sum in doubles; texts of many scripts at once, far from any language,
    score some -500 a class, where that rounding is largest."""
    language, probability = compiled.classify(text)
    expected_language, expected = reference.classify(text)
    runner_up = sorted(reference.rank(text), key=lambda pair: pair[1])[-2][1]
    if expected - runner_up > 2 * rel * expected:
        assert language == expected_language, text
    assert probability == pytest.approx(expected, rel=rel, abs=1e-7), text


@pytest.mark.parametrize("text", SAMPLES)
def test_answers_as_py3langid(compiled, reference, text: str) -> None:
    same_answer(compiled, reference, text)


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from([*"abcdefghijklmnopqrstuvwxyzäöüßéèàçñ ABCÉ?!.,'", "\u0301"])
        | st.characters(),
        max_size=120,
    )
)
def test_any_text_answers_as_py3langid(compiled, reference, text: str) -> None:
    same_answer(compiled, reference, text, rel=2e-4)


def test_banking_questions_answer_as_py3langid(compiled, reference) -> None:
    texts = bundled_dataset("banking77", "test").texts
    mismatched = [t for t in texts if compiled.classify(t)[0] != reference.classify(t)[0]]
    assert not mismatched
    threshold = LanguageDetector().min_confidence
    flipped = [
        t
        for t in texts
        if (compiled.classify(t)[1] >= threshold) != (reference.classify(t)[1] >= threshold)
    ]
    assert not flipped


def test_the_detector_serves_through_the_compiled_identifier() -> None:
    detector = LanguageDetector(DEFAULT_LANGUAGES)
    assert detector.detect(SAMPLES[0]) == "de"
    assert isinstance(detector._identifier, CompiledIdentifier)


def test_other_layouts_stay_with_py3langid(reference: LanguageIdentifier) -> None:
    raw = LanguageIdentifier(
        reference.nb_ptc,
        reference.nb_pc,
        reference.nb_classes,
        reference.tk_nextmove,
        reference.tk_output,
        norm_probs=False,  # raw scores: not what the C computes
        tk_row=reference.tk_row,
    )
    assert CompiledIdentifier.of(raw) is None
    aliased = LanguageIdentifier(
        np.hstack([reference.nb_ptc, reference.nb_ptc[:, :1]]),
        np.append(reference.nb_pc, reference.nb_pc[0]),
        [*reference.nb_classes, reference.nb_classes[0]],  # a class twice: py3langid folds it
        reference.tk_nextmove,
        reference.tk_output,
        norm_probs=True,
        tk_row=reference.tk_row,
    )
    assert CompiledIdentifier.of(aliased) is None
    assert CompiledIdentifier.of(object()) is None


def test_tables_that_do_not_fit_are_refused_not_read_out_of_bounds() -> None:
    assert loops is not None
    ptc = np.zeros((2, 3), dtype=np.float16)
    pc = np.zeros(3, dtype=np.float32)
    row = array("H", [0, 0])
    output = np.array([-1, 1], dtype=np.int32)
    nextmove = array("I", [1] * 256)  # every byte leads to state 1, which outputs feature 1
    index, probability = loops.language_scores(b"ab", nextmove, row, output, ptc, pc)
    assert (index, probability) == (0, pytest.approx(1 / 3))
    with pytest.raises(ValueError, match="do not fit"):
        loops.language_scores(b"a", array("I", [2] * 256), row, output, ptc, pc)  # no state 2
    with pytest.raises(ValueError, match="do not fit"):
        loops.language_scores(b"\xff", array("I", [1] * 255), row, output, ptc, pc)  # short
    with pytest.raises(ValueError, match="not a row"):
        loops.language_scores(b"a", nextmove, row, np.array([-1, 2], np.int32), ptc, pc)
    with pytest.raises(ValueError, match="one value per state"):
        loops.language_scores(b"a", nextmove, row, np.array([-1], np.int32), ptc, pc)
    with pytest.raises(ValueError, match="at least one"):  # no state 0 to start from
        loops.language_scores(b"", nextmove, array("H"), np.array([], np.int32), ptc, pc)
    with pytest.raises(ValueError, match="ptc"):
        loops.language_scores(b"a", nextmove, row, output, ptc.astype(np.float32), pc)
    with pytest.raises(ValueError, match="nextmove"):
        loops.language_scores(b"a", array("i", [1] * 256), row, output, ptc, pc)
