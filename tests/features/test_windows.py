from __future__ import annotations

from tailorbot.features.windows import EVENT_WINDOWS, count_in_window, window_slice

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
    widths = list(EVENT_WINDOWS.values())
    assert widths == sorted(widths) and list(EVENT_WINDOWS) == ["1h", "24h", "7d", "30d"]
