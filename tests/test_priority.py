"""lower_this_thread: a background thread's CPU priority, not its process's; and the threads
a niced thread would otherwise start are started at the process's own priority."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from tailorbot._priority import lower_this_thread
from tailorbot.archive.writer import ArchiveWriter

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="a thread's nice value is its own on Linux only"
)


def nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def in_thread(work: Any) -> None:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def test_the_calling_thread_is_niced_and_the_rest_of_the_process_is_not() -> None:
    main_before = nice_of(threading.get_native_id())
    if main_before > 16:
        pytest.skip(f"the tests run at nice {main_before}: 3 more is past the kernel's 19")
    seen: dict[str, int | bool] = {}

    def background() -> None:
        tid = threading.get_native_id()
        before = nice_of(tid)
        seen["applied"] = lower_this_thread(3)
        seen["added"] = nice_of(tid) - before

    in_thread(background)
    assert seen == {"applied": True, "added": 3}
    assert nice_of(threading.get_native_id()) == main_before


def test_nothing_to_add_is_reported_as_not_applied() -> None:
    seen: list[bool] = []
    in_thread(lambda: seen.append(lower_this_thread(0)))
    if nice_of(threading.get_native_id()) < 19:
        in_thread(lambda: seen.append(lower_this_thread(19) and not lower_this_thread(1)))
    assert seen in ([False], [False, True])


class Archive:
    """Where the writer's records go, in memory (the thread's priority is under test)."""

    def __init__(self) -> None:
        self.decisions: list[Mapping[str, Any]] = []

    def write_decision(self, record: Mapping[str, Any]) -> None:
        self.decisions.append(record)


def test_the_archive_writer_started_first_keeps_its_priority_whoever_puts() -> None:
    if nice_of(threading.get_native_id()) > 16:
        pytest.skip("the tests run at a nice value too high to add to")
    writer = ArchiveWriter(Archive())  # type: ignore[arg-type]
    writer.start()  # as the runtime does, from the main thread
    in_thread(lambda: (lower_this_thread(3), writer.put("decision", {"decision_id": "d1"})))
    assert writer.flush(30.0)
    assert writer._thread is not None and writer._thread.native_id is not None
    assert nice_of(writer._thread.native_id) == nice_of(threading.get_native_id())
    writer.close()
