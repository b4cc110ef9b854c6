"""Rows computed once per key and kept side by side in one array, for the serving paths.

A message's rows (one per word, or per token) then come out in one gather instead of many
small numpy calls. The cache is bounded: a message that would overflow it empties it first
(unbounded inputs keep memory bounded). Serving runs in a thread pool, so lookups, fills and
the gather hold a lock: a slot is never refilled while another message still reads it.

>>> cache = RowCache(4, 2, np.float64, lambda key, row: row.fill(len(key)))
>>> entries, rows = cache.gather(["ab", "abc", "ab"])
>>> rows.tolist()
[[2.0, 2.0], [3.0, 3.0], [2.0, 2.0]]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)
E = TypeVar("E")


class RowCache(Generic[K, E]):
    """Up to ``capacity`` rows of ``width`` values, one per key, made by ``make(key, row)``.

    ``make`` fills ``row`` (the key's slot) in place and returns the key's entry: whatever
    else the caller keeps about the key (:meth:`gather` hands the entries back).
    """

    def __init__(
        self, capacity: int, width: int, dtype: type, make: Callable[[K, np.ndarray], E]
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self._capacity = capacity
        self._width = width
        self._dtype = dtype
        self._make = make
        self._rows: np.ndarray | None = None  # allocated on first use; pages touched as filled
        self._slots: dict[K, tuple[int, E]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._slots)

    def gather(self, keys: Sequence[K]) -> tuple[list[E], np.ndarray]:
        """Each key's entry, and their rows in key order (a copy, ``(len(keys), width)``)."""
        if len(keys) > self._capacity:  # more keys than the cache holds: made, not kept
            rows: np.ndarray = np.empty((len(keys), self._width), dtype=self._dtype)
            return [self._make(key, row) for key, row in zip(keys, rows, strict=True)], rows
        with self._lock:
            if self._rows is None:
                self._rows = np.empty((self._capacity, self._width), dtype=self._dtype)
            table, slots = self._rows, self._slots
            if len(slots) + len(keys) > self._capacity:
                slots.clear()
            entries, indices = [], []
            for key in keys:
                found = slots.get(key)
                if found is None:
                    slot = len(slots)
                    found = slots[key] = (slot, self._make(key, table[slot]))
                indices.append(found[0])
                entries.append(found[1])
            return entries, table[indices]
