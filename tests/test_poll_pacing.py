"""getUpdates polls are spaced while updates keep coming, and never when the bot is quiet."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram.methods import GetUpdates, SendMessage

from bot.telegram.middlewares.in_flight import UpdatesInFlight
from bot.telegram.middlewares.poll_pacing import PollPacing


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


async def test_polls_after_a_batch_wait_for_the_interval_and_quiet_ones_do_not() -> None:
    time = FakeTime()
    pacing = PollPacing(0.02, clock=time.clock, quiet=time.sleep)
    batches: list[list[Any]] = [["u1"], ["u2", "u3"], [], [], ["u4"]]

    async def make_request(_bot: Any, method: Any) -> Any:
        if isinstance(method, GetUpdates):
            time.now += 0.005  # the request itself
            return batches.pop(0)
        return "sent"

    poll = GetUpdates(offset=0, timeout=30)
    assert await pacing(make_request, None, poll) == ["u1"]  # type: ignore[arg-type]
    assert time.slept == []  # the first poll goes at once
    assert await pacing(make_request, None, poll) == ["u2", "u3"]  # type: ignore[arg-type]
    assert time.slept == [0.015]  # 20 ms after the previous poll was sent
    assert await pacing(make_request, None, poll) == []  # type: ignore[arg-type]
    assert time.slept == [0.015, 0.015]
    # The previous poll came back empty: the bot is quiet, the next tap is fetched at once.
    assert await pacing(make_request, None, poll) == []  # type: ignore[arg-type]
    assert time.slept == [0.015, 0.015]
    # A slow batch (handled for longer than the interval) does not wait either.
    assert await pacing(make_request, None, poll) == ["u4"]  # type: ignore[arg-type]
    time.now += 0.5
    batches.append(["u5"])
    assert await pacing(make_request, None, poll) == ["u5"]  # type: ignore[arg-type]
    assert time.slept == [0.015, 0.015]
    # Other methods are never held back.
    message = SendMessage(chat_id=1, text="x")
    assert await pacing(make_request, None, message) == "sent"  # type: ignore[arg-type]
    assert time.slept == [0.015, 0.015]


async def test_a_bot_done_with_its_batch_polls_at_once_and_a_busy_one_waits() -> None:
    """With the real count of updates in flight: a batch handled in less than the interval
    does not hold the next poll (a small crowd's taps are fetched at once); a batch still
    being handled holds it for the interval, not longer."""
    in_flight = UpdatesInFlight()
    pacing = PollPacing(0.2, quiet=in_flight.quiet)
    release = asyncio.Event()
    handled: list[str] = []
    tasks: set[asyncio.Task[Any]] = set()

    async def handle(update: str) -> None:
        await release.wait()
        handled.append(update)

    async def make_request(_bot: Any, method: Any) -> Any:
        return ["u"]

    def start_batch(name: str) -> None:
        # As aiogram's polling does: one task per update, created just before the next poll.
        update = in_flight(lambda _e, _d: handle(name), None, {})  # type: ignore[arg-type]
        tasks.add(asyncio.create_task(update))

    loop = asyncio.get_running_loop()
    poll = GetUpdates(offset=0, timeout=30)
    await pacing(make_request, None, poll)  # type: ignore[arg-type]
    start_batch("quick")
    loop.call_later(0.01, release.set)  # handled 10 ms into the 200 ms interval
    sent = loop.time()
    await pacing(make_request, None, poll)  # type: ignore[arg-type]
    assert handled == ["quick"]
    assert loop.time() - sent < 0.1  # polled once the batch was done, not at 200 ms
    release.clear()
    start_batch("slow")  # still being handled when the interval is up
    sent = loop.time()
    await pacing(make_request, None, poll)  # type: ignore[arg-type]
    waited = loop.time() - sent
    assert handled == ["quick"] and in_flight.count == 1
    assert 0.15 < waited < 0.5
    release.set()
    assert await in_flight.drain(1) == 0 and handled == ["quick", "slow"]
