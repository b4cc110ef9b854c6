"""The thread CPU figures of ``/metrics``: per live thread, a pool's threads under one name."""

from __future__ import annotations

import threading
import time

from tailorbot.telemetry.threads import pool_name, thread_cpu_seconds


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_pools_threads_count_under_one_name_and_an_ended_thread_drops_out() -> None:
    started, release = threading.Barrier(3), threading.Event()

    def work() -> None:
        _burn(0.05)
        started.wait()
        release.wait(30)

    pool = [threading.Thread(target=work, name=f"test-burner-{i}") for i in range(2)]
    for thread in pool:
        thread.start()
    started.wait(30)
    try:
        seconds = thread_cpu_seconds()
        # two threads of at least 50 ms each, under the name without their numbers
        assert seconds["test-burner"] >= 0.1
        assert not any(name.startswith("test-burner-") for name in seconds)
        assert seconds[threading.current_thread().name] > 0
    finally:
        release.set()
        for thread in pool:
            thread.join(30)
    assert "test-burner" not in thread_cpu_seconds()


def test_pool_name_strips_only_a_trailing_number() -> None:
    assert pool_name("tailorbot-decision-12") == "tailorbot-decision"
    assert pool_name("Thread-7 (serve_forever)") == "Thread"
    assert pool_name("tailorbot-decision-recorder") == "tailorbot-decision-recorder"
    assert pool_name("worker2") == "worker2"
