"""The rate limiter, driven by a fake clock."""

from __future__ import annotations

import itertools

from bot.delivery.ratelimit import CATCH_UP, RateLimiter, SendLimits


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def simulate(limiter: RateLimiter, clock: FakeClock, chats: list[tuple[int, bool]]) -> list[float]:
    """Send to each chat in turn as soon as allowed; return the send instants."""
    times = []
    for chat, group in chats:
        # Floating-point edges may leave a sliver to wait: wait again, as the sender does.
        for _ in range(3):
            wait = limiter.delay(chat, group)
            if wait <= 1e-9:
                break
            clock.t += wait + 1e-9
        assert limiter.delay(chat, group) <= 1e-9
        limiter.record(chat, group)
        times.append(clock.t)
    return times


def test_overall_rate_never_exceeded_in_any_second() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=30, margin=0.0), clock)
    times = simulate(limiter, clock, [(i, False) for i in range(300)])
    for i in range(len(times) - 30):
        assert times[i + 30] - times[i] >= 1.0
    # ... and it is not slower than it needs to be: 300 messages in about 10 s.
    assert times[-1] - times[0] <= 10.0


def test_one_message_per_second_per_private_chat() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=30), clock)
    times = simulate(limiter, clock, [(7, False)] * 5)
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    # Another chat waits only for the overall pacing, not for chat 7's second.
    assert limiter.delay(8, False) <= (1 + limiter.limits.margin) / 30


def test_twenty_per_minute_per_group() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=30), clock)
    times = simulate(limiter, clock, [(-100, True)] * 45)
    for i in range(len(times) - 20):
        assert times[i + 20] - times[i] >= 60.0
    assert times[19] - times[0] < 1.0  # the first twenty go at once


def test_pause_after_429_holds_every_chat() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(), clock)
    limiter.pause(5)
    assert 4.9 < limiter.delay(1, False) <= 5
    assert 4.9 < limiter.delay(-5, True) <= 5
    clock.t += 5
    assert limiter.delay(1, False) == 0


def test_sends_are_evenly_spaced_not_bursty() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=100, margin=0.0), clock)
    times = simulate(limiter, clock, [(i, False) for i in range(50)])
    # After the few a late sender may catch up with, one message every 1/100 s.
    gaps = [b - a for a, b in itertools.pairwise(times)][CATCH_UP:]
    assert min(gaps) >= 0.01 - 1e-9
    assert max(gaps) <= 0.01 + 1e-9
