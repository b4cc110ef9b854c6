"""py3langid's byte DFA packed for ASCII text: what the compiled language detection walks
for most messages.

py3langid walks a message's bytes through a DFA of 104,583 states whose transitions are
38,346 distinct rows of 256 next states (``nextmove``, 39 MB of uint32), then reads each
state's feature (``output``). Two dependent loads a byte, one of them anywhere in 39 MB: in
a server, whose other work keeps evicting that table from the caches, detecting a message's
language took some 16 µs of mostly waiting on memory (``perf``, forty-third session of
docs/benchmarks.md), against 2.5 µs in a loop of its own.

ASCII text reaches fewer of them: 47,350 states with 15,488 distinct rows, whose 128 ASCII
columns fall into 92 classes of bytes that lead everywhere to the same states. Packed, an
entry per (row, class) holds where the byte leads: the next state's row (a packed row's
index) shifted left by ``shift``, and the next state's feature plus one (0: none) in the
low ``shift`` bits. One load a byte from a table of 5.7 MB. The features ASCII text reaches
(43,798 of 100,053) are renumbered in order, their rows of the scores copied together (613 KB
of float16 where the whole table is 1.4 MB). The same transitions and the same features in
the same order, so the same counts, summed in the same order: the same scores
(tests/models/intent/test_language_dfa.py compares the two walks on every Banking77 message,
on random ASCII text and on random automata).

>>> from array import array
>>> import numpy as np
>>> # three states: 0 (start), 1 after "a", 2 after "ab"; feature 0 at state 2
>>> nextmove = array("I", [0] * 512)
>>> nextmove[ord("a")] = nextmove[256 + ord("a")] = 1
>>> nextmove[256 + ord("b")] = 2
>>> ptc = np.ones((1, 2), dtype=np.float16)  # one feature, two classes
>>> packed = ascii_packed(nextmove, array("H", [0, 1, 0]), np.array([-1, -1, 0], np.int32), ptc)
>>> packed.table.shape  # two rows; "a", "b" and every other byte are the three classes
(2, 3)
>>> row = packed.start
>>> for byte in b"ab":
...     entry = int(packed.table[row, packed.classes[byte]])
...     row, feature = entry >> packed.shift, (entry & ((1 << packed.shift) - 1)) - 1
>>> feature  # "ab" reached state 2 and its feature
0
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import numpy as np

ASCII = 128
CHUNK = 1024  # states a step of the search reads at once


class AsciiPacked(NamedTuple):
    """The DFA as ASCII text walks it (:func:`ascii_packed`), in the compiled walk's
    argument order: ``classes`` (each ASCII byte's class), ``table`` (packed rows by class),
    the ``start`` state's packed row, the ``shift`` of the row above the feature, and the
    features' rows of the scores (``ptc``) that ASCII text reaches, renumbered in order."""

    classes: bytes
    table: np.ndarray
    start: int
    shift: int
    ptc: np.ndarray


def ascii_packed(nextmove: Any, row: Any, output: Any, ptc: np.ndarray) -> AsciiPacked | None:
    """The DFA (``nextmove``: 256 next states per row; ``row``: each state's row;
    ``output``: each state's feature, a row of ``ptc``, or -1 for none) restricted to the
    states ASCII text reaches from state 0, packed (see the module); None where the packed
    entries do not fit 32 bits (more packed rows than ``2 ** (32 - shift)``), ASCII has over
    255 classes, or a state ASCII reaches has a feature past ``ptc``'s rows.

    Worked a slice at a time (:data:`CHUNK` states, or one byte's column, a byte's class
    found by its column's digest): whole-table temporaries, or every class's column kept
    while the classes were found, stayed in the process's heap once freed, some 14-20 MB
    of resident memory for good."""
    moves = np.frombuffer(memoryview(nextmove).cast("B"), dtype=np.uint32).reshape(-1, 256)
    rows = np.asarray(row, dtype=np.intp)
    features = np.asarray(output)
    reached = np.zeros(len(rows), dtype=bool)
    reached[0] = True
    frontier = np.array([0])
    while frontier.size:  # breadth first, a level of states at a time (marks, not sorts)
        level = np.zeros(len(rows), dtype=bool)
        for at in range(0, frontier.size, CHUNK):
            level[moves[rows[frontier[at : at + CHUNK]], :ASCII]] = True
        level &= ~reached
        reached |= level
        frontier = np.flatnonzero(level)
    read = np.zeros(len(moves), dtype=bool)
    read[rows[reached]] = True
    kept = np.flatnonzero(read)  # the rows ASCII text reads, in their order
    firsts: list[int] = []  # a byte of each class
    classes = bytearray(ASCII)
    class_of: dict[bytes, list[int]] = {}  # a column's digest: the classes with it
    for byte in range(ASCII):
        column = moves[kept, byte]
        same = class_of.setdefault(hashlib.blake2b(column.tobytes()).digest(), [])
        found = next((c for c in same if np.array_equal(moves[kept, firsts[c]], column)), None)
        if found is None:
            found = len(firsts)
            firsts.append(byte)
            same.append(found)
        classes[byte] = found
    reaches = np.zeros(len(ptc), dtype=bool)
    for byte in firsts:
        reads = features[moves[kept, byte]]
        if reads.size and reads.max() >= len(ptc):  # the full walk refuses such tables
            return None
        reaches[reads[reads >= 0]] = True  # a negative output is none, as the walk reads it
    used = np.flatnonzero(reaches)  # the features ASCII reaches, in their order
    # a feature plus one below the row: the renumbered features, 0 for none
    shift = max(1, int(used.size).bit_length())
    if len(firsts) > 255 or shift > 31 or kept.size > 1 << (32 - shift):
        return None
    packed_row = np.zeros(len(moves), dtype=np.uint32)
    packed_row[kept] = np.arange(kept.size, dtype=np.uint32)
    plus_one = np.cumsum(reaches, dtype=np.uint32)  # the same order: the same sums
    table = np.empty((kept.size, len(firsts)), dtype=np.uint32)
    for c, byte in enumerate(firsts):
        states = moves[kept, byte]
        reads = features[states]
        renumbered = np.where(reads < 0, 0, plus_one[np.maximum(reads, 0)])
        table[:, c] = (packed_row[rows[states]] << np.uint32(shift)) | renumbered
    return AsciiPacked(bytes(classes), table, int(packed_row[rows[0]]), shift, ptc[used])


__all__ = ["ASCII", "CHUNK", "AsciiPacked", "ascii_packed"]
