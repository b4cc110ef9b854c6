"""The static embedding's tokenizer per piece gives the tokenizer's own ids, or is not used."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from tailorbot.models.intent import default_dataset
from tailorbot.models.intent.static_embeddings import WordLlamaEmbeddings
from tailorbot.models.intent.token_pieces import SPACE, PieceTokenizer


@cache
def wordllama() -> Any:
    return WordLlamaEmbeddings()._loaded()[1]


@cache
def small_cache() -> PieceTokenizer:
    """Made once (it reads the whole tokenizer); 8 pieces: refilled again and again."""
    return PieceTokenizer(wordllama(), max_pieces=8)


def test_the_same_ids_on_every_banking77_message() -> None:
    tokenizer = wordllama()
    pieces = PieceTokenizer(tokenizer)
    texts = [*default_dataset("train").texts, *default_dataset("test").texts]
    assert [pieces.ids(t) for t in texts] == [tokenizer.encode(t).ids for t in texts]
    assert len(pieces) > 1000


# spaces and their runs, the space mark itself, other whitespace, added tokens, characters
# the vocabulary lacks (byte fallback) and punctuation
PARTS = st.sampled_from(
    [" ", "  ", "   ", SPACE, SPACE * 2, "\t", "\n", "\u00a0", "\u3000", "<s>", "</s>", "<unk>",
     "<", ">", "s", "card", "a", "é", "😀", "✓", ".", ",", "'", "!", "x1", "Ünïcödé"]
)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(st.lists(PARTS, max_size=12).map("".join))
def test_the_same_ids_on_hostile_texts(text: str) -> None:
    assert small_cache().ids(text) == wordllama().encode(text).ids


@cache
def large_cache() -> PieceTokenizer:
    return PieceTokenizer(wordllama())


@settings(max_examples=600, deadline=None)
@given(st.lists(PARTS, max_size=12).map("".join))
def test_kept_pieces_give_the_same_ids_in_one_compiled_call(text: str) -> None:
    pieces, want = large_cache(), wordllama().encode(text).ids
    assert pieces.ids(text) == want  # its pieces kept now
    assert pieces.ids(text) == want
    if pieces._cached is None:
        assert os.environ.get("CI") != "true", "tailorbot._native was not built"
        return
    whole = not text or any(token in text for token in ("<s>", "</s>", "<unk>"))
    if not whole:  # read whole by the tokenizer: no pieces kept
        assert pieces._cached(text, pieces._pieces) == want
    assert pieces._cached(text + " never-kept-piece", pieces._pieces) is None


def test_the_cache_stays_bounded() -> None:
    tokenizer = wordllama()
    pieces = PieceTokenizer(tokenizer, max_pieces=5)
    for text in default_dataset("test").texts[:200]:
        assert pieces.ids(text) == tokenizer.encode(text).ids
        assert len(pieces) <= 5


def test_the_serving_path_tokenizes_per_piece() -> None:
    embeddings = WordLlamaEmbeddings()
    text = "I still have not received my new card"
    assert embeddings._ids(text) == wordllama().encode(text).ids
    assert isinstance(embeddings._pieces, PieceTokenizer) and len(embeddings._pieces) == 8


def _sentencepiece_like(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)]
    )
    return tokenizer


VOCAB = {"<unk>": 0, SPACE: 1, "a": 2, "b": 3, f"{SPACE}a": 4, "ab": 5, f"{SPACE}ab": 6}
MERGES = [(SPACE, "a"), ("a", "b"), (SPACE, "ab")]


def test_a_small_tokenizer_of_the_same_kind_applies() -> None:
    tokenizer = _sentencepiece_like(VOCAB, MERGES)
    assert PieceTokenizer.applies(tokenizer)
    pieces = PieceTokenizer(tokenizer)
    for text in ["ab a b", "  ab", "ba ab  a", ""]:
        assert pieces.ids(text) == tokenizer.encode(text).ids


def test_merges_across_a_space_are_not_split() -> None:
    # "a▁" can merge a character with the space after it: pieces would change the ids
    vocab = {**VOCAB, f"a{SPACE}": 7}
    crossing = _sentencepiece_like(vocab, [("a", SPACE), *MERGES])  # ranked first
    assert crossing.encode("a a").ids != [
        i for piece in ("a", "a") for i in crossing.encode(piece).ids
    ]
    assert not PieceTokenizer.applies(crossing)
    with pytest.raises(ValueError, match="cross a space"):
        PieceTokenizer(crossing)
    pretokenized = _sentencepiece_like(VOCAB, MERGES)
    pretokenized.pre_tokenizer = pre_tokenizers.Whitespace()
    assert not PieceTokenizer.applies(pretokenized)
