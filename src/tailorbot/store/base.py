"""The online-store interfaces: one small ABC per concern, like Feast's online stores.

* :class:`FeatureStore` — the stream processor's per-user feature records, with their
  freshness (log partition/offset and time of the last applied event). Writes are atomic per
  user and *fenced*: a record whose offset is not newer than the stored one is ignored, and so
  is one below the user's erasure watermark, so neither a stale worker after a rebalance nor an
  event of an erased user still in flight can bring old state back. It also keeps the erasure
  watermarks (under a one-way digest of the user id), since the fence reads them.
* :class:`ProfileStore` — user attributes set with ``PUT /v1/users/{id}`` (tier, consent...).
* :class:`DecisionStore` — what ``/v1/personalize`` answered, kept for ``/v1/feedback``.
* :class:`CounterStore` — additive float statistics shared by every server process (article
  statistics, experiment outcomes) and additive float vectors (a bandit arm's sufficient
  statistics, packed: one row, not one per entry); additions commute, so none is lost.

A backend module implements all four over one connection (one SQLite file, one Redis
client) and returns them as :class:`Stores` from its ``open_stores(url)``. Services take only
the interfaces they use.
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

import numpy as np
import orjson

from tailorbot.errors import BackendError
from tailorbot.store.state_blob import keeps_apart


class StoreError(BackendError):
    """The store is unreachable or refused an operation (maps to HTTP 503)."""

    what = "online store"


class DedupeDelta(NamedTuple):
    """How a state's dedupe ids (its ``seen`` map, which the stores keep apart: see
    :mod:`tailorbot.store.state_blob`) changed since the stored record it was applied to:
    the ids ``added`` (event id -> time), and ``floor``: the ids older than it were dropped
    (``inf``: all of them; None: none)."""

    added: Mapping[str, float]
    floor: float | None = None


# A record as read, when the store keeps its ids apart: written back as it is, nothing changes.
# (Read-only: every record read shares it.)
UNCHANGED = DedupeDelta(MappingProxyType({}))


@dataclass(slots=True)
class FeatureRecord:
    """One user's feature record.

    ``dedupe`` is how the state's dedupe ids changed since the stored record it was applied
    to: a store's read sets :data:`UNCHANGED` when it keeps the ids apart, and a writer that
    applied events to such a record sets what they changed, so that the store writes only
    that. None (a new record, one whose few ids are in its blob, or one stored in an older
    layout): the store writes all of the state's ids. Not part of the record's value
    (``==``).
    """

    user_id: str
    state: dict[str, Any]
    partition: int
    offset: int  # log offset of the last applied event
    event_time: float  # epoch seconds of the newest applied event
    updated_at: float  # wall-clock epoch seconds of this write
    version: int = field(default=1)  # bumps when the state layout changes
    dedupe: DedupeDelta | None = field(default=None, compare=False)

    def mark_written(self) -> None:
        """Set ``dedupe`` as a read of the record just written would: :data:`UNCHANGED` when
        the store keeps its dedupe ids apart now, else None (they are in the state's blob)."""
        self.dedupe = UNCHANGED if keeps_apart(self.state, self.dedupe) else None


class Erasure(NamedTuple):
    """What a user's erasure left: the log offset below which their events no longer count
    (events already in the log), and when it happened (epoch seconds; 0 for erasures recorded
    before it was kept, and for a consent withdrawal, which is no erasure). An event *dated*
    before ``erased_at`` does not count either, even above the watermark: one made before the
    erasure but appended after it (a feedback or a decision of another process in flight,
    dated when its request arrived) must not bring the user back."""

    watermark: int
    erased_at: float

    def drops(self, offset: int, event_time: float) -> bool:
        """Whether an event at log ``offset``, dated ``event_time``, is erased."""
        return offset < self.watermark or self.predates(event_time)

    def predates(self, event_time: float) -> bool:
        """Whether what is dated ``event_time`` was made before the erasure: erased, whatever
        its offset (alone, it judges what has none: a profile field a chatbot re-sends)."""
        return event_time < self.erased_at


class _Reachable(ABC):
    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`StoreError` unless the store is reachable."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what this view holds (the shared connection is closed by :class:`Stores`)."""


# One applied event's additions to the shared counters: (its log offset, namespace -> deltas).
EventIncrement = tuple[int, Mapping[str, Mapping[str, float]]]


class FeatureStore(_Reachable):
    """Per-user feature records, fenced writes, erasure watermarks."""

    @abstractmethod
    def get(self, user_id: str) -> FeatureRecord | None: ...

    @abstractmethod
    def get_many(self, user_ids: Iterable[str]) -> dict[str, FeatureRecord]: ...

    @abstractmethod
    def put_many(
        self,
        records: Sequence[FeatureRecord],
        increments: Mapping[str, Sequence[EventIncrement]] | None = None,
    ) -> set[str]:
        """Write records, each atomically; skip one whose offset is not newer than stored, or
        is below the user's erasure watermark in that partition; return the users written.
        A user given twice is written in turn, as in two calls. A state's dedupe ids are
        written in the same atomic step (:mod:`tailorbot.store.state_blob`): in its blob
        while they are few, else apart: the record's :class:`DedupeDelta` when it has one,
        all of them when not.

        ``increments`` (user id -> ``(event offset, {namespace: {counter: delta}})``) are
        added to the shared counters in the same atomic write as the user's record, and only
        those of events after the offset stored before it: events another worker already
        wrote (a partition hand-over) are counted once, and a skipped record adds nothing.
        """

    @abstractmethod
    def erase(
        self, user_id: str, partition: int, watermark: int, erased_at: float | None = None
    ) -> None:
        """Delete the user's record; remember ``watermark`` and ``erased_at`` (epoch seconds,
        default now; each only grows) under its digest."""

    @abstractmethod
    def erasures(self, user_ids: Iterable[str]) -> dict[str, Erasure]:
        """For erased users among ``user_ids``: what to drop of their events."""


class ProfileStore(_Reachable):
    """User profiles (attributes and consent) as JSON objects."""

    @abstractmethod
    def get(self, user_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def get_many(self, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...

    @abstractmethod
    def put(self, user_id: str, profile: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def delete(self, user_id: str) -> None: ...


def decoded_decision(record: bytes | str, feedback: bytes | str | None) -> dict[str, Any]:
    """A decision as :meth:`DecisionStore.get` returns it, from the JSON of its record and of
    its feedback (None: none yet), as the backends store them."""
    decision: dict[str, Any] = orjson.loads(record)
    if feedback is not None:
        decision["feedback"] = orjson.loads(feedback)
    return decision


def decision_made_at(record: Mapping[str, Any]) -> float:
    """A decision record's ``created_at`` in epoch seconds; ``inf`` without a readable one
    (no erasure refuses it)."""
    text = record.get("created_at")
    try:
        return datetime.fromisoformat(text).timestamp() if isinstance(text, str) else math.inf
    except ValueError:
        return math.inf


def check_finite(deltas: Mapping[str, float]) -> None:
    """:class:`ValueError` naming the counter deltas that are not finite numbers (every
    backend refuses them before writing anything).

    >>> check_finite({"n": 1.0, "x": float("nan")})
    Traceback (most recent call last):
    ValueError: counter deltas must be finite numbers; not so for ['x']
    >>> check_finite({"a": 1e308, "b": 1e308})  # their sum overflows; each is finite
    >>> from decimal import Decimal  # finite, but not as doubles: refused as before
    >>> check_finite({"a": Decimal("1e400"), "b": Decimal("-1e400")})
    Traceback (most recent call last):
    ValueError: counter deltas must be finite numbers; not so for ['a', 'b']
    """
    # An exact sum of the deltas as doubles is finite only if every one is (a NaN or an
    # infinity carries through it; inf - inf and an overflow raise): one C loop for the
    # common case, each feedback's some 85 deltas checked twice. Only otherwise are the
    # names looked for, each delta alone (an overflow of finite ones finds none).
    with contextlib.suppress(OverflowError, ValueError):
        if math.isfinite(math.fsum(deltas.values())):
            return
    bad = sorted(name for name, delta in deltas.items() if not math.isfinite(delta))
    if bad:
        raise ValueError(f"counter deltas must be finite numbers; not so for {bad}")


VECTOR_DTYPE = np.dtype("<f8")  # a vector counter as stored: little-endian doubles
VectorDelta = Sequence[float] | np.ndarray  # what is added to one vector counter


def packed_vectors(deltas: Mapping[str, Any]) -> dict[str, bytes]:
    """Vector deltas (name -> a sequence of numbers) as the stores keep them: each one
    little-endian doubles. :class:`ValueError` naming those that are not a non-empty flat
    sequence of finite numbers (every backend refuses them before writing anything).

    >>> packed_vectors({"arm/a": [1.0, 0.5]})["arm/a"].hex()
    '000000000000f03f000000000000e03f'
    >>> packed_vectors({"arm/a": [1.0], "arm/b": [float("inf")], "c": []})
    Traceback (most recent call last):
    ValueError: vector deltas must be non-empty lists of finite numbers; not so for ['arm/b', 'c']
    """
    packed: dict[str, bytes] = {}
    bad: list[str] = []
    for name, delta in deltas.items():
        try:
            given = np.asarray(delta)
        except (TypeError, ValueError):  # ragged
            bad.append(name)
            continue
        # numbers only: not text numpy would parse, nor an int past 64 bits (an object)
        if given.dtype.kind not in "biuf" or given.ndim != 1 or not given.size:
            bad.append(name)
            continue
        vector = given.astype(VECTOR_DTYPE, copy=False)
        if not np.isfinite(vector).all():
            bad.append(name)
            continue
        packed[name] = vector.tobytes()
    if bad:
        raise ValueError(
            f"vector deltas must be non-empty lists of finite numbers; not so for {sorted(bad)}"
        )
    return packed


def unpacked_vector(stored: bytes) -> np.ndarray:
    """A stored vector counter as a (read-only) array of doubles."""
    return np.frombuffer(stored, dtype=VECTOR_DTYPE)


class FeedbackMark(NamedTuple):
    """One decision's feedback write (the arguments of :meth:`DecisionStore.record_feedback`)."""

    decision_id: str
    feedback: Mapping[str, Any]
    increments: Mapping[str, Mapping[str, float]] | None = None
    previous: Mapping[str, Any] | None = None
    # namespace -> vector counter -> its delta (see CounterStore.add_vectors)
    vectors: Mapping[str, Mapping[str, VectorDelta]] | None = None


class DecisionStore(_Reachable):
    """Decision records awaiting feedback, indexed by user for erasure."""

    @abstractmethod
    def put_many(self, decisions: Sequence[tuple[str, str, Mapping[str, Any]]]) -> set[str]:
        """Write ``(decision_id, user_id, record)`` items in one round trip (a batch of the
        decision recorder); a decision written again replaces its record. A decision made
        (:func:`decision_made_at`) before an erasure of its user (the feature store's
        ``erased_at``, same backend) is not written, in the same atomic step: one queued in
        another process while the user was erased cannot outlive the erasure. Returns the
        ids written, so that what was refused goes nowhere else either (the archive)."""

    def put(self, decision_id: str, user_id: str, record: Mapping[str, Any]) -> bool:
        """Write one decision (as :meth:`put_many`); False when refused."""
        return decision_id in self.put_many([(decision_id, user_id, record)])

    @abstractmethod
    def get(self, decision_id: str) -> dict[str, Any] | None:
        """The decision as put; once feedback was recorded, also under ``"feedback"``."""

    def get_many(self, decision_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored ones of ``decision_ids``, by id, each as :meth:`get` returns it, in one
        round trip where the backend can (the feedback batcher's reads). The default reads
        them one by one."""
        found: dict[str, dict[str, Any]] = {}
        for decision_id in dict.fromkeys(decision_ids):
            decision = self.get(decision_id)
            if decision is not None:
                found[decision_id] = decision
        return found

    @abstractmethod
    def record_feedback(
        self,
        decision_id: str,
        feedback: Mapping[str, Any],
        increments: Mapping[str, Mapping[str, float]] | None = None,
        previous: Mapping[str, Any] | None = None,
        vectors: Mapping[str, Mapping[str, VectorDelta]] | None = None,
    ) -> bool:
        """Attach feedback to a decision and, in the same atomic write, add ``increments``
        (namespace -> counter deltas, as :meth:`CounterStore.increment`) to the counters and
        ``vectors`` (namespace -> vector deltas, as :meth:`CounterStore.add_vectors`) to the
        vector counters; True the first time, False (nothing written) when already given or
        the decision is unknown. The feedback mark is the idempotency key of what was
        learned from it.

        With ``previous`` (the mark as read), the mark is replaced only while it still is
        ``previous`` (compare-and-set): a later signal extends the mark exactly once."""

    def record_feedbacks(self, marks: Sequence[FeedbackMark]) -> list[bool]:
        """:meth:`record_feedback` for each mark, in order, in one round trip where the
        backend can (the feedback batcher's writes): what each returns. Each mark with its
        increments stays one atomic write, and a mark sees the earlier ones of the call (a
        second first mark of a decision is refused). A delta that is not finite (or a vector
        delta that is no flat, non-empty list of numbers) raises :class:`ValueError` before
        anything is written. Sums the stored vectors refuse (a delta whose length differs
        from its vector's, a sum that is not finite) raise :class:`StoreError`, as a failed
        write does: nothing is written on SQLite; on Redis, a call of more marks than one
        script takes is several atomic scripts, and the others may have written theirs (the
        feedback handler reads back which marks landed, as after any failed write). The
        default writes them one by one."""
        return [self.record_feedback(*mark) for mark in marks]

    @abstractmethod
    def erase_user(self, user_id: str) -> None:
        """Delete every decision of the user."""

    @abstractmethod
    def scan(self, since: float | None = None) -> Iterator[dict[str, Any]]:
        """Every decision stored at or after ``since`` (epoch seconds), oldest first, each with
        its feedback under ``"feedback"`` when given (off-policy evaluation reads this)."""

    def purge(self, created_before: float) -> int:
        """Delete the decisions made before ``created_before`` (epoch s; retention); how
        many. A backend whose decisions expire by themselves (Redis ``decision_ttl``) keeps
        none longer than that and returns 0."""
        return 0


class CounterStore(_Reachable):
    """Named namespaces of additive float counters, and of additive float vectors.

    A vector counter is many counters that are always added together (a bandit arm's
    sufficient statistics): one stored row and one addition, where separate counters
    would cost a row and an upsert each. Its values are doubles, added as Python adds
    them, element by element.
    """

    @abstractmethod
    def increment(self, namespace: str, deltas: Mapping[str, float]) -> None:
        """Atomically add ``deltas`` (finite numbers) to the named counters of ``namespace``."""

    @abstractmethod
    def counters(self, namespace: str) -> dict[str, float]: ...

    @abstractmethod
    def add_vectors(self, namespace: str, deltas: Mapping[str, VectorDelta]) -> None:
        """Atomically add each delta (a non-empty sequence of finite numbers) to the named
        vector of ``namespace``, element by element; a vector not stored yet starts as the
        delta. :class:`ValueError` (nothing written) for a delta that is not finite, one
        whose length differs from its stored vector's, or a sum that is not finite."""

    @abstractmethod
    def vectors(self, namespace: str) -> dict[str, np.ndarray]:
        """The vector counters of ``namespace`` by name, as read-only arrays of doubles."""

    def stamps(self, namespaces: Sequence[str]) -> tuple[int, ...] | None:
        """Change stamps of the counters and vectors of ``namespaces``: every write that adds
        to them raises a stamp, in the same atomic step. Stamps read before a read of the
        namespaces and equal to those read before an earlier one mean nothing changed in
        between, so a reader that polls (a server, every second) can skip the read.
        None where the backend keeps no stamps: read every time."""
        return None


# A user's profile and feature record, as a decision reads them (either may be missing).
ProfileAndRecord = tuple[dict[str, Any] | None, FeatureRecord | None]


class AsyncUserReader(Protocol):
    """A user's profile and feature record, awaited (:class:`StoreError` on failure)."""

    async def __call__(self, user_id: str) -> ProfileAndRecord: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Stores:
    """The four stores of one backend, sharing its connection (closed by :meth:`close`)."""

    features: FeatureStore
    profiles: ProfileStore
    decisions: DecisionStore
    counters: CounterStore
    closer: Callable[[], None] | None = None
    # The backend's read of a user's profile and feature record at once (one round trip on
    # a network store); ``None``: :meth:`profile_and_record` reads each from its store.
    user_reader: Callable[[str], ProfileAndRecord] | None = None
    # The same read awaited on the event loop, where the backend is a network one (Redis):
    # what a decision computed on the loop reads (``decision_threads = 0``).
    async_user_reader: AsyncUserReader | None = None

    def profile_and_record(self, user_id: str) -> ProfileAndRecord:
        """The user's profile and feature record: what every decision reads. A backend's own
        read (``user_reader``) leaves the state's dedupe ids out (see
        :mod:`tailorbot.store.state_blob`): the record is for reading, never to write back."""
        if self.user_reader is not None:
            return self.user_reader(user_id)
        return self.profiles.get(user_id), self.features.get(user_id)

    async def aclose(self) -> None:
        """Close what the asyncio read opened, on its event loop (before :meth:`close`)."""
        if self.async_user_reader is not None:
            await self.async_user_reader.aclose()

    def ping(self) -> None:
        for store in (self.features, self.profiles, self.decisions, self.counters):
            store.ping()

    def close(self) -> None:
        for store in (self.features, self.profiles, self.decisions, self.counters):
            store.close()
        if self.closer is not None:
            self.closer()
