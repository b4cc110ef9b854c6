"""A user's sessions summed up for the feature view, in one pass: compiled where built.

The view reads every session of the user's state: when each started (its windows' counts,
the last 30 days' sessions in start order), their outcomes, handoffs and lengths, and which
article resolved which issue. For a busy customer that is hundreds of sessions on every
decision, and the stream worker reads the same for every article and outcome event it
applies. :func:`session_summary` makes the pass in C (``csrc/sessions.c``) where the
extension is built and the state holds the types the stream worker writes; else in Python,
in :func:`summary_in_python`, the reference the compiled pass is tested against.

>>> from tailorbot.features.sessions import new_session, set_outcome
>>> s1, s2 = new_session(100.0), new_session(200.0)
>>> set_outcome(s1, 150.0, True, "kb-1")
>>> summary = session_summary({"s1": s1, "s2": s2}, now=300.0, widths=(150.0, 250.0),
...                           rate_window=250.0)
>>> summary.counts, summary.resolution_rate, summary.unresolved_streak, summary.resolutions
([1, 2], 1.0, 0, {'': {'kb-1': 1}})
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from tailorbot.compiled import native
from tailorbot.features import sessions as sess
from tailorbot.features.windows import counts_in_windows, window_slice


class SessionSummary(NamedTuple):
    """What the feature view reads of a user's sessions as of ``now``."""

    counts: list[int]  # sessions started in each window (by start time)
    resolution_rate: float | None  # of the recent sessions with an outcome, resolved
    handoff_rate: float | None  # of the recent sessions, handed off
    unresolved_streak: int  # the latest recent sessions with an outcome, unresolved in a row
    mean_length_s: float | None  # of the recent sessions, first to last event (or end)
    # per intent ("" for none), how many sessions each article resolved (live sessions only:
    # the state's folded counts are not in it)
    resolutions: dict[str, dict[str, int]]


def session_summary(
    sessions: Mapping[str, sess.Session],
    now: float,
    widths: Iterable[float],
    rate_window: float,
) -> SessionSummary:
    """The summary of ``sessions`` (a state's ``sessions``) as of ``now``: counts in each of
    ``widths``' windows, and the recent sessions (started within ``rate_window``)."""
    widths = widths if type(widths) is tuple else tuple(widths)  # read once: any iterable
    compiled = getattr(native(), "session_summary", None)  # None: not built, or built before
    found = None
    if compiled is not None:
        # None: a value of a type the stream worker does not write; the Python pass reads it
        found = compiled(sessions, now, widths, rate_window)
    if found is None:
        found = summary_in_python(sessions, now, widths, rate_window)
    counts, resolution_rate, handoff_rate, streak, lengths, resolutions = found
    mean = math.fsum(lengths) / len(lengths) if lengths else None
    return SessionSummary(counts, resolution_rate, handoff_rate, streak, mean, resolutions)


def summary_in_python(
    sessions: Mapping[str, sess.Session],
    now: float,
    widths: Sequence[float],
    rate_window: float,
) -> tuple[list[int], float | None, float | None, int, list[float], dict[str, dict[str, int]]]:
    """The pass in Python: ``(counts, resolution_rate, handoff_rate, unresolved_streak,
    lengths, resolutions)``, ``lengths`` those of the recent sessions in start order."""
    # every session as (start, id, session), oldest first (ties: by id; ids are unique, so
    # the sessions themselves are never compared): a window's sessions are a slice
    started = [(sess.start(s), sid, s) for sid, s in sessions.items()]
    started.sort()
    starts = [start for start, _, _ in started]
    recent = started[window_slice(starts, now, rate_window)]
    with_outcome = resolved = handed_off = 0
    lengths = []
    for start, _, session in recent:
        outcome = session[sess.RESOLVED]
        if outcome is not None:
            with_outcome += 1
            resolved += outcome
        if session[sess.HANDOFFS]:
            handed_off += 1
        lengths.append(max(0.0, sess.end(session) - start))
    streak = 0
    for _, _, session in reversed(recent):
        outcome = session[sess.RESOLVED]
        if outcome is None:
            continue
        if outcome:
            break
        streak += 1
    resolutions: dict[str, dict[str, int]] = {}
    for session in sessions.values():
        found = sess.resolution(session)
        if found is not None:
            articles = resolutions.setdefault(found[0], {})
            articles[found[1]] = articles.get(found[1], 0) + 1
    n = len(recent)
    return (
        counts_in_windows(starts, now, widths),
        resolved / with_outcome if with_outcome else None,
        handed_off / n if n else None,
        streak,
        lengths,
        resolutions,
    )
