from __future__ import annotations

from bisect import bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailorbot.compiled import native
from tailorbot.features import windows
from tailorbot.features.params import DAY_S
from tailorbot.features.windows import (
    EVENT_WINDOWS,
    SESSION_WINDOWS,
    count_in_window,
    counts_in_windows,
    window_slice,
)

TIMES = [10.0, 20.0, 20.0, 30.0, 40.0]


def test_window_is_open_at_the_old_end_and_closed_at_now() -> None:
    assert count_in_window(TIMES, now=30.0, width=10.0) == 1  # (20, 30]
    assert count_in_window(TIMES, now=30.0, width=10.001) == 3
    assert count_in_window(TIMES, now=29.9, width=100.0) == 3  # later times are out
    assert count_in_window([], now=30.0, width=10.0) == 0


def test_slice_indexes_a_parallel_list() -> None:
    labels = ["a", "b", "c", "d", "e"]
    assert labels[window_slice(TIMES, now=30.0, width=15.0)] == ["b", "c", "d"]


def test_windows_are_ordered_by_width() -> None:
    """The feature view unpacks each list of counts into its named features in this order."""
    widths = list(EVENT_WINDOWS.values())
    assert widths == sorted(widths) and list(EVENT_WINDOWS) == ["1h", "24h", "7d", "30d"]
    assert list(SESSION_WINDOWS) == ["7d", "30d"] and SESSION_WINDOWS["7d"] == 7 * DAY_S


compiled = getattr(native(), "window_counts", None)
needs_build = pytest.mark.skipif(compiled is None, reason="tailorbot._native was not built")
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


def _bisected(times: list, now: float, widths: tuple) -> list[int]:
    end = bisect_right(times, now)
    return [end - bisect_right(times, now - width) for width in widths]


@needs_build
@settings(max_examples=300, deadline=None)
@given(
    times=st.lists(finite | st.sampled_from([0.0, -0.0, 5.0, 5.0]), max_size=40),
    now=finite,
    widths=st.lists(st.floats(allow_nan=False, min_value=0.0), max_size=5).map(tuple),
    sort=st.booleans(),
)
def test_compiled_counts_are_the_bisections(
    times: list[float], now: float, widths: tuple, sort: bool
) -> None:
    """The same probes as bisect.bisect_right, so the same counts, sorted list or not."""
    if sort:
        times.sort()
    assert compiled(times, now, widths) == _bisected(times, now, widths)


@needs_build
def test_a_value_compiled_counts_cannot_compare_is_left_to_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    times = [10.0, 20.0, 30, 40.0]  # an int where a bisection probes
    assert compiled(times, 35.0, (10.0,)) is None
    assert compiled([10.0], 35, (10.0,)) is None  # now: int and float compare exactly
    assert compiled([10.0], 35.0, (10,)) is None
    assert counts_in_windows(times, 35.0, (10.0, 30.0)) == _bisected(times, 35.0, (10.0, 30.0))
    monkeypatch.setattr(windows, "native", lambda: None)  # where the build is missing
    assert counts_in_windows(TIMES, 30.0, [10.0, 25.0]) == [1, 4]
