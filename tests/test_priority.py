"""lower_this_thread: a background thread's CPU priority, not its process's."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from tailorbot._priority import lower_this_thread

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="a thread's nice value is its own on Linux only"
)


def nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def test_the_calling_thread_is_niced_and_the_rest_of_the_process_is_not() -> None:
    seen: dict[str, int | bool] = {}

    def background() -> None:
        tid = threading.get_native_id()
        before = nice_of(tid)
        seen["applied"] = lower_this_thread(3)
        seen["added"] = nice_of(tid) - before

    main_before = nice_of(threading.get_native_id())
    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert seen == {"applied": True, "added": 3}
    assert nice_of(threading.get_native_id()) == main_before
