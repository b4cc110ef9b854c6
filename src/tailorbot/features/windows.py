"""Sliding event-time windows over sorted timestamp lists.

A window of width ``w`` evaluated *as of* ``now`` holds the timestamps ``t`` with
``now - w < t <= now`` (open at the old end, closed at ``now``).

>>> count_in_window([10.0, 20.0, 30.0], now=30.0, width=10.0)
1
>>> count_in_window([10.0, 20.0, 30.0], now=30.0, width=20.0)
2
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

from tailorbot.compiled import native
from tailorbot.features.params import DAY_S

HOUR_S = 3600.0

# name -> width in seconds; the names are the suffixes of the feature names.
EVENT_WINDOWS: dict[str, float] = {"1h": HOUR_S, "24h": DAY_S, "7d": 7 * DAY_S, "30d": 30 * DAY_S}
SESSION_WINDOWS: dict[str, float] = {"7d": 7 * DAY_S, "30d": 30 * DAY_S}


def count_in_window(sorted_ts: Sequence[float], now: float, width: float) -> int:
    """How many of ``sorted_ts`` (ascending) lie in ``(now - width, now]``."""
    return counts_in_windows(sorted_ts, now, (width,))[0]


def counts_in_windows(sorted_ts: Sequence[float], now: float, widths: Iterable[float]) -> list[int]:
    """:func:`count_in_window` for each of ``widths``, the windows' common end found once.

    >>> counts_in_windows([10.0, 20.0, 30.0], now=30.0, widths=[10.0, 20.0])
    [1, 2]
    """
    widths = widths if type(widths) is tuple else tuple(widths)  # read once: any iterable
    # in one compiled call where built (the feature view counts 10 windows a decision); it
    # answers None for a value that is not a float, which the bisections below compare
    compiled = getattr(native(), "window_counts", None)
    if compiled is not None:
        found: list[int] | None = compiled(sorted_ts, now, widths)
        if found is not None:
            return found
    end = bisect_right(sorted_ts, now)
    return [end - bisect_right(sorted_ts, now - width) for width in widths]


def window_slice(sorted_ts: Sequence[float], now: float, width: float) -> slice:
    """Index range of ``sorted_ts`` inside ``(now - width, now]``, for parallel lists."""
    return slice(bisect_right(sorted_ts, now - width), bisect_right(sorted_ts, now))
