"""getUpdates polls are spaced while updates keep coming, and never when the bot is quiet."""

from __future__ import annotations

from typing import Any

from aiogram.methods import GetUpdates, SendMessage

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
    pacing = PollPacing(0.02, clock=time.clock, sleep=time.sleep)
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
