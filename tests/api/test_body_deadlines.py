"""BodyDeadlines: one sweep timer ends the body waits past their deadline, and nothing else."""

from __future__ import annotations

import asyncio

import pytest

from tailorbot.api.shedding import BodyDeadlines, _Wait


def test_a_wait_answered_in_time_returns_its_answer_and_leaves_no_timer() -> None:
    async def main() -> tuple[str, int, bool]:
        deadlines = BodyDeadlines(tick_s=0.01)
        wait = _Wait(asyncio.get_running_loop().time() + 5)

        async def body() -> str:
            await asyncio.sleep(0.03)  # across a few sweeps
            return "body"

        answer = await deadlines.waiting(wait, body)
        await asyncio.sleep(0.05)  # the sweep after the last wait does not arm another
        return answer, len(deadlines._waits), not deadlines._armed

    assert asyncio.run(main()) == ("body", 0, True)


def test_a_deadline_already_past_is_a_timeout_without_calling() -> None:
    called = []

    async def body() -> None:
        called.append(True)

    async def main() -> None:
        deadlines = BodyDeadlines(tick_s=0.01)
        await deadlines.waiting(_Wait(asyncio.get_running_loop().time() - 1), body)

    with pytest.raises(TimeoutError):
        asyncio.run(main())
    assert called == []


def test_a_cancellation_from_elsewhere_is_not_taken_for_the_deadline() -> None:
    async def main() -> bool:
        deadlines = BodyDeadlines(tick_s=0.01)
        wait = _Wait(asyncio.get_running_loop().time() + 5)
        task = asyncio.create_task(deadlines.waiting(wait, lambda: asyncio.sleep(5)))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return wait.expired

    assert asyncio.run(main()) is False


def test_only_the_waits_past_their_deadline_end() -> None:
    async def main() -> tuple[str, str]:
        deadlines = BodyDeadlines(tick_s=0.01)
        now = asyncio.get_running_loop().time()

        async def one(deadline: float, seconds: float) -> str:
            try:
                await deadlines.waiting(_Wait(deadline), lambda: asyncio.sleep(seconds))
            except TimeoutError:
                return "408"
            return "answered"

        late, on_time = await asyncio.gather(one(now + 0.02, 5), one(now + 5, 0.1))
        return late, on_time

    assert asyncio.run(main()) == ("408", "answered")


def test_a_loop_closed_with_its_sweep_pending_leaves_the_next_loop_a_sweep() -> None:
    deadlines = BodyDeadlines(tick_s=0.05)

    async def quick() -> None:  # a body that came at once: the loop ends, its sweep pending
        wait = _Wait(asyncio.get_running_loop().time() + 5)
        await deadlines.waiting(wait, lambda: asyncio.sleep(0))

    async def stalled() -> str:
        wait = _Wait(asyncio.get_running_loop().time() + 0.1)
        try:
            await asyncio.wait_for(deadlines.waiting(wait, lambda: asyncio.sleep(5)), 3)
        except TimeoutError:
            return "408" if wait.expired else "never ended by the sweep"
        return "answered"

    asyncio.run(quick())
    assert asyncio.run(stalled()) == "408"
