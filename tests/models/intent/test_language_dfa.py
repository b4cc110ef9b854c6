"""The DFA packed for ASCII text (language_dfa.py, csrc/language.c's language_scores_ascii)
against the whole DFA's walk: the same answers, bit for bit."""

from __future__ import annotations

from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.models.intent import bundled_dataset, language_dfa
from tailorbot.models.intent.language import DEFAULT_LANGUAGES, CompiledIdentifier, _identifier
from tailorbot.models.intent.language_dfa import ascii_packed
from tests.native_support import loops, needs_build

pytestmark = needs_build


@pytest.fixture(scope="module")
def compiled() -> CompiledIdentifier:
    identifier = _identifier(DEFAULT_LANGUAGES)
    assert isinstance(identifier, CompiledIdentifier)
    assert identifier.ascii is not None  # py3langid's model packs
    return identifier


def both(identifier: CompiledIdentifier, data: bytes) -> tuple[object, object]:
    assert identifier.ascii is not None
    scores, tables = identifier.ascii
    return scores(data, *tables), identifier.scores(data, *identifier.tables)


def test_every_banking_message_answers_as_the_whole_dfa(compiled) -> None:
    texts = [t for split in ("train", "test") for t in bundled_dataset("banking77", split).texts]
    encoded = [compiled.encode(t) for t in texts]
    ascii_texts = [data for data in encoded if data.isascii()]
    assert len(ascii_texts) > 0.99 * len(texts)
    differ = [data for data in ascii_texts if len(set(both(compiled, data))) != 1]
    assert not differ


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=300))
def test_any_ascii_text_answers_as_the_whole_dfa(compiled, text: str) -> None:
    packed, whole = both(compiled, compiled.encode(text))
    assert packed == whole


def test_the_packed_tables_are_smaller(compiled) -> None:
    classes, table, _, _, ptc, _ = compiled.ascii[1]
    nextmove, _, _, whole_ptc, _ = compiled.tables
    assert table.nbytes < len(nextmove) * nextmove.itemsize / 5
    assert ptc.shape[0] < whole_ptc.shape[0] and ptc.shape[1] == whole_ptc.shape[1]
    assert len(classes) == 128 and max(classes) < table.shape[1]


def test_classify_walks_the_packed_dfa_for_ascii_text_only(compiled, monkeypatch) -> None:
    calls: list[bytes] = []
    packed_scores, packed = compiled.ascii

    def counted(data: bytes, *tables: object) -> tuple[int, float]:
        calls.append(data)
        return packed_scores(data, *tables)

    monkeypatch.setattr(compiled, "ascii", (counted, packed))
    assert compiled.classify("Where is my card? It has not arrived.")[0] == "en"
    assert compiled.classify("Où est ma carte ? Je l'ai commandée.")[0] == "fr"
    assert calls == [b"Where is my card? It has not arrived."]


@st.composite
def small_dfas(draw: st.DrawFn) -> tuple[array, array, np.ndarray, np.ndarray]:
    """A random DFA over a few states and rows whose ASCII moves use a few bytes, and a
    feature table (any negative output is none): what ascii_packed packs, small enough to
    reach every corner."""
    n_rows = draw(st.integers(1, 6))
    n_states = draw(st.integers(1, 12))
    n_features = draw(st.integers(1, 9))
    targets = st.integers(0, n_states - 1)
    nextmove = array("I", [0] * (256 * n_rows))
    for r in range(n_rows):
        default = draw(targets)
        for byte in range(256):
            nextmove[r * 256 + byte] = default
        for byte in draw(st.lists(st.sampled_from(b"ab c\x7f\x80\xff"), max_size=5)):
            nextmove[r * 256 + byte] = draw(targets)
    row = array("H", draw(st.lists(st.integers(0, n_rows - 1), min_size=n_states,
                                   max_size=n_states)))  # fmt: skip
    output = np.array(
        draw(st.lists(st.integers(-3, n_features - 1), min_size=n_states, max_size=n_states)),
        dtype=np.int32,
    )
    ptc = np.array(
        draw(st.lists(st.floats(-8, 0, width=16), min_size=2 * n_features,
                      max_size=2 * n_features)),
        dtype=np.float16,
    ).reshape(n_features, 2)  # fmt: skip
    return nextmove, row, output, ptc


@settings(max_examples=300, deadline=None)
@given(small_dfas(), st.binary(max_size=40).map(lambda b: bytes(x & 0x7F for x in b)))
def test_any_dfa_packs_to_the_same_walk(dfa, data: bytes) -> None:
    nextmove, row, output, ptc = dfa
    pc = np.zeros(2, dtype=np.float32)
    packed = ascii_packed(nextmove, row, output, ptc)
    assert packed is not None
    assert loops.language_scores_ascii(data, *packed, pc) == loops.language_scores(
        data, nextmove, row, output, ptc, pc
    )


def test_bytes_share_a_class_by_their_columns_not_their_digests(monkeypatch) -> None:
    class Colliding:  # every column's digest the same: only the columns tell classes apart
        def __init__(self, data: bytes) -> None:
            pass

        def digest(self) -> bytes:
            return b"same"

    monkeypatch.setattr(language_dfa.hashlib, "blake2b", Colliding)
    nextmove = array("I", [0] * 512)
    nextmove[ord("a")] = nextmove[256 + ord("a")] = 1
    nextmove[256 + ord("b")] = 2
    ptc = np.array([[0.0, -4.0]], dtype=np.float16)
    output = np.array([-1, -1, 0], dtype=np.int32)
    packed = ascii_packed(nextmove, array("H", [0, 1, 0]), output, ptc)
    assert packed is not None and packed.table.shape[1] == 3  # "a", "b" and the rest
    pc = np.zeros(2, dtype=np.float32)
    for data in (b"ab", b"ba", b"aab", b"xyz"):
        whole = loops.language_scores(data, nextmove, array("H", [0, 1, 0]), output, ptc, pc)
        assert loops.language_scores_ascii(data, *packed, pc) == whole


def test_a_feature_past_the_table_is_not_packed() -> None:
    nextmove = array("I", [1] * 256)  # every byte leads to state 1
    output = np.array([-1, 2], dtype=np.int32)  # whose feature has no row in ptc
    ptc = np.zeros((2, 3), dtype=np.float16)
    assert ascii_packed(nextmove, array("H", [0, 0]), output, ptc) is None


def test_tables_that_do_not_fit_are_refused_not_read_out_of_bounds() -> None:
    assert loops is not None
    ptc = np.zeros((2, 3), dtype=np.float16)
    pc = np.zeros(3, dtype=np.float32)
    packed = ascii_packed(array("I", [1] * 256), array("H", [0, 0]),
                          np.array([-1, 1], dtype=np.int32), ptc)  # fmt: skip
    assert packed is not None
    classes, table, start, shift, used = packed
    assert loops.language_scores_ascii(b"ab", *packed, pc) == (0, pytest.approx(1 / 3))
    with pytest.raises(ValueError, match="not ASCII"):
        loops.language_scores_ascii(b"a\xe9", *packed, pc)
    with pytest.raises(ValueError, match="do not fit"):  # a class past the table's width
        loops.language_scores_ascii(b"a", bytes([9] * 128), table, start, shift, used, pc)
    with pytest.raises(ValueError, match="do not fit"):  # a row past the table
        loops.language_scores_ascii(b"a", classes, table, 5, shift, used, pc)
    far = np.array([[(0 << 4) | 7]], dtype=np.uint32)  # feature 6: used has one row
    with pytest.raises(ValueError, match="not a row"):
        loops.language_scores_ascii(b"a", bytes(128), far, 0, 4, used, pc)
    with pytest.raises(ValueError, match="128 bytes"):
        loops.language_scores_ascii(b"a", classes[:5], table, start, shift, used, pc)
    with pytest.raises(ValueError, match="shift"):
        loops.language_scores_ascii(b"a", classes, table, start, 32, used, pc)
    with pytest.raises(ValueError, match="table"):
        loops.language_scores_ascii(b"a", classes, table.astype(np.int64), start, shift,
                                    used, pc)  # fmt: skip
    with pytest.raises(ValueError, match="pc needs one value per class"):
        loops.language_scores_ascii(b"a", classes, table, start, shift, used, pc[:2])
    with pytest.raises(TypeError):
        loops.language_scores_ascii("a", classes, table, start, shift, used, pc)
