"""The rate limiter, driven by a fake clock."""

from __future__ import annotations

import heapq
import itertools
from collections import deque

from bot.delivery.ratelimit import RateLimiter, SendLimits


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
        limiter.done(chat, group)  # answered at once: Telegram counted it when it left
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


def test_a_429_on_one_chat_holds_that_chat_only() -> None:
    """A flood 429 answers one request to one chat: under our own overall pacing it is about
    that chat (its per-chat or per-group limit), and the others keep going."""
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=30), clock)
    assert limiter.flood(7, False, 5) == 0  # no overall pause
    assert 4.9 < limiter.delay(7, False) <= 5
    assert limiter.delay(8, False) == 0
    assert limiter.overall_delay(clock.t) == 0
    assert limiter.flood(-5, True, 4) == 0  # a group's 429 holds the group alone too
    assert 3.9 < limiter.delay(-5, True) <= 4
    assert limiter.delay(9, False) == 0
    assert 7 in limiter.busy_chats(horizon=1.0)  # left out of the next claims
    clock.t += 5
    assert limiter.delay(7, False) == 0


def test_429s_on_several_chats_at_once_pause_everything() -> None:
    """The overall limit really is hit (another bot on the token, Telegram slowing down): a
    429 may then come on any chat. Three chats told within retry_after + 1 s pause all."""
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=30), clock)
    assert limiter.flood(1, False, 2) == 0
    clock.t += 1.0
    assert limiter.flood(1, False, 2) == 0  # the same chat again is still that chat's
    assert limiter.flood(2, False, 3) == 0
    clock.t += 1.0
    assert limiter.flood(3, False, 2) == 3  # the third chat: the largest retry_after, for all
    assert 2.9 < limiter.delay(4, False) <= 3
    assert 2.9 < limiter.overall_delay(clock.t) <= 3
    # Then the overall rate stays 10 % lower for a while: something else shares the limit.
    clock.t += 3
    times = simulate(limiter, clock, [(100 + i, False) for i in range(40)])
    gaps = [b - a for a, b in itertools.pairwise(times)][limiter.catch_up() :]
    assert min(gaps) >= 1.1 * (1 + limiter.limits.margin) / 30 - 1e-9
    # 429s far apart are each about their own chat.
    clock.t += 60
    assert limiter.flood(11, False, 1) == 0
    clock.t += 2.5
    assert limiter.flood(12, False, 1) == 0
    clock.t += 2.5
    assert limiter.flood(13, False, 1) == 0
    assert limiter.delay(14, False) == 0


def test_sends_are_evenly_spaced_not_bursty() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=100, margin=0.0), clock)
    times = simulate(limiter, clock, [(i, False) for i in range(50)])
    # After the few a late sender may catch up with, one message every 1/100 s.
    gaps = [b - a for a, b in itertools.pairwise(times)][limiter.catch_up() :]
    assert min(gaps) >= 0.01 - 1e-9
    assert max(gaps) <= 0.01 + 1e-9


def test_a_late_sender_catches_up_a_tenth_of_a_second_within_the_sliding_second() -> None:
    """A stall (the loop busy, the machine loaded) is made up for, not lost, up to a tenth
    of a second's worth at once; no second ever holds more than the limit."""
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=300, margin=0.0), clock)
    times = simulate(limiter, clock, [(i, False) for i in range(150)])
    clock.t += 0.2  # stalled
    stalled = clock.t
    times += simulate(limiter, clock, [(i, False) for i in range(150, 600)])
    assert limiter.catch_up() == 30
    # The one due now and 30 made up for, back to back; then the schedule again.
    assert sum(1 for t in times if t == stalled) == 1 + 30
    for i in range(len(times) - 300):
        assert times[i + 300] - times[i] >= 1.0 - 1e-9


# --------------------------------------------------------------------------- albums: weights


def test_an_album_goes_to_a_rested_chat_at_once_then_the_chat_pays_it_back() -> None:
    clock = FakeClock()
    limits = SendLimits(per_second=30, margin=0.03)
    limiter = RateLimiter(limits, clock)
    assert limiter.delay(7, False, weight=7) == 0  # rested: the whole album at once
    limiter.record(7, False, weight=7)
    # Seven photos at 1/s, plus the margin: the chat's next message waits 7.03 s ...
    assert abs(limiter.delay(7, False) - 7.03) < 1e-9
    # ... and another chat does not wait for it: a rested sender's second has room left.
    assert limiter.delay(8, False) == 0
    clock.t += 7.03
    assert limiter.delay(7, False) == 0
    limiter.record(7, False)  # a text: one more second, not seven
    assert abs(limiter.delay(7, False) - 1.03) < 1e-9


def test_album_photos_count_in_the_sliding_second() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=10, margin=0.0), clock)
    limiter._next_global = 0.0  # look at the window alone
    limiter.record(1, False, weight=7)
    limiter.done(1, False, weight=7)
    limiter._next_global = 0.0
    for chat in (2, 3, 4):
        assert limiter.overall_delay(clock.t) == 0
        limiter.record(chat, False)
        limiter.done(chat, False)
        limiter._next_global = 0.0
    # 7 + 3 = 10 in this second: the next single, or a 2-photo album, waits for it to pass.
    assert limiter.overall_delay(clock.t) == 1.0
    assert limiter.overall_delay(clock.t, weight=2) == 1.0
    clock.t += 0.5
    assert limiter.overall_delay(clock.t, weight=2) == 0.5


def test_a_send_on_its_way_counts_until_a_second_after_its_answer() -> None:
    """Telegram may count a send at any instant before its answer comes back."""
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=10, margin=0.0), clock)
    limiter._next_global = 0.0  # look at the window alone
    limiter.record(1, False, weight=7)  # on its way, not answered
    for chat in (2, 3, 4):
        limiter.record(chat, False)
        limiter.done(chat, False)
        limiter._next_global = 0.0
    assert limiter.overall_delay(clock.t) == 1.0
    clock.t += 5.0  # still on its way (Telegram slow, the request held): still counted
    assert limiter.overall_delay(clock.t, weight=3) == 0.0
    assert limiter.overall_delay(clock.t, weight=4) == 1.0
    limiter.done(1, False, weight=7)  # answered now: counted for one more second
    clock.t += 0.4
    assert abs(limiter.overall_delay(clock.t, weight=4) - 0.6) < 1e-9
    clock.t += 0.6
    assert limiter.overall_delay(clock.t, weight=10) == 0.0


def test_a_group_counts_each_photo_against_its_twenty_a_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=30, margin=0.0), clock)
    limiter.record(-100, True, weight=10)
    clock.t += 1
    limiter.record(-100, True, weight=10)
    assert limiter.chat_delay(-100, True, 1, clock.t) == 59.0  # 20 in the minute
    clock.t += 59
    assert limiter.chat_delay(-100, True, 10, clock.t) == 0.0


def test_indebted_chats_are_left_out_and_forgotten_once_paid_back() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=30, margin=0.0), clock)
    limiter.record(1, False, weight=7)
    limiter.record(2, False)
    assert limiter.busy_chats(horizon=0.5) == {1: 7.0, 2: 1.0}
    assert set(limiter.busy_chats(horizon=2.0)) == {1}
    clock.t += 1.0
    assert limiter.busy_chats(horizon=0.0) == {1: 6.0}
    assert 2 not in limiter._chat_ready  # paid back: forgotten


def test_a_send_learnt_from_before_a_restart_is_paid_back_from_when_it_left() -> None:
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=30, margin=0.0), clock)
    limiter.owe(5, False, 7, at=clock.t - 3.0)  # an album three seconds before the restart
    assert limiter.delay(5, False) == 4.0
    limiter.owe(6, False, 1, at=clock.t - 3.0)  # paid back already
    assert limiter.delay(6, False) == 0.0


class TelegramModel:
    """What the emulator enforces (playground/emulator/limits.py), to check a schedule against:
    a sliding second of `rate` messages overall, and a private chat that takes a send only
    once it has paid back the previous ones at 1/s."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.window: deque[float] = deque()
        self.ready: dict[int, float] = {}
        self.violations = 0

    def send(self, t: float, chat: int, weight: int) -> None:
        while self.window and self.window[0] <= t - 1.0:
            self.window.popleft()
        if len(self.window) + weight > self.rate or self.ready.get(chat, 0.0) > t + 1e-9:
            self.violations += 1
        self.ready[chat] = t + weight
        self.window.extend([t] * weight)


def interleave(limiter: RateLimiter, clock: FakeClock, queues: dict[int, list[int]]) -> list:
    """The outbox's way, on a fake clock: of the chats not paying back, the oldest message
    (the chats' messages were queued chat after chat); the sender commits to it and waits for
    its overall slot; when every chat is paying back, it waits for the first to be done."""
    sends: list[tuple[float, int, int]] = []
    order = {chat: i for i, chat in enumerate(queues)}
    while any(queues.values()):
        busy = limiter.busy_chats(horizon=0.0)
        ready = [chat for chat, q in queues.items() if q and chat not in busy]
        if not ready:
            clock.t += min(busy.values()) + 1e-9
            continue
        chat = min(ready, key=lambda c: (9 - len(queues[c]), order[c]))  # by row id
        weight = queues[chat].pop(0)
        for _ in range(3):  # floating-point edges: wait again, as the sender does
            wait = limiter.delay(chat, False, weight)
            if wait <= 1e-9:
                break
            clock.t += wait + 1e-9
        limiter.record(chat, False, weight)
        limiter.done(chat, False, weight)  # answered at once
        sends.append((clock.t, chat, weight))
    return sends


def test_results_with_albums_interleaved_stay_near_the_limit_without_a_violation() -> None:
    """200 recipients, each a text, an album of seven and a text (nine messages as Telegram
    counts them): the overall rate stays near the limit although every chat waits out its
    album, and the schedule never breaks Telegram's rules."""
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=30, margin=0.03), clock)
    queues = {1000 + i: [1, 7, 1] for i in range(200)}
    sends = interleave(limiter, clock, queues)
    model = TelegramModel(30)
    for t, chat, weight in sends:
        model.send(t, chat, weight)
    assert model.violations == 0
    total = sum(w for _, _, w in sends)
    assert total == 200 * 9
    span = sends[-1][0] - sends[0][0]
    ideal = total / 30
    # Within the margin (3 %) and the last chats' own 8 s of pay-back.
    assert span <= ideal * 1.03 + 8.5, (span, ideal)
    # ... where one chat at a time (each waiting out its album) would take 200 × 8 s.
    for chat in (1000, 1100, 1199):
        mine = [t for t, c, _ in sends if c == chat]
        assert mine[1] - mine[0] >= 1.0 and mine[2] - mine[1] >= 7.0


# ------------------------------------------------------- arrival: where Telegram counts a send


class StalledReceiver:
    """When each send reaches Telegram: `travel` seconds after it left, except that the
    receiver stalls for `stall` seconds every `period` (a busy machine, a slow network):
    whatever arrives meanwhile is counted together when it wakes up. The answer comes back
    `travel` seconds after it was counted."""

    def __init__(self, period: float = 2.5, stall: float = 0.25, travel: float = 0.001) -> None:
        self.period, self.stall, self.travel = period, stall, travel

    def counted_at(self, left: float) -> float:
        arrives = left + self.travel
        into = arrives % self.period
        return arrives - into + self.stall if into < self.stall else arrives


def interleave_in_flight(
    limiter: RateLimiter, clock: FakeClock, queues: dict[int, list[int]], receiver: StalledReceiver
) -> list[tuple[float, int, int]]:
    """The outbox's way (see `interleave`), with requests that take time: a chat gets nothing
    while its previous send is on its way (the outbox's `in_flight`). Returns (counted at,
    chat, weight) as Telegram counts them."""
    counted: list[tuple[float, int, int]] = []
    answers: list[tuple[float, int, int]] = []  # (answered at, chat, weight), a heap
    order = {chat: i for i, chat in enumerate(queues)}

    def advance(to: float) -> None:  # the answers due by then, in time order
        while answers and answers[0][0] <= to:
            answered, chat, weight = heapq.heappop(answers)
            clock.t = max(clock.t, answered)
            limiter.done(chat, False, weight)
        clock.t = max(clock.t, to)

    while any(queues.values()) or answers:
        busy = limiter.busy_chats(horizon=0.0)
        flying = {chat for _, chat, _ in answers}
        ready = [c for c, q in queues.items() if q and c not in busy and c not in flying]
        if not ready:
            waits = [*busy.values(), *(answered - clock.t for answered, _, _ in answers[:1])]
            advance(clock.t + max(0.0, min(waits)) + 1e-9)
            continue
        chat = min(ready, key=lambda c: (9 - len(queues[c]), order[c]))
        weight = queues[chat].pop(0)
        for _ in range(100):  # wait, as the sender does, until the limiter says go
            wait = limiter.delay(chat, False, weight)
            if wait <= 1e-9:
                break
            advance(clock.t + wait + 1e-9)
        limiter.record(chat, False, weight)
        at = receiver.counted_at(clock.t)
        counted.append((at, chat, weight))
        heapq.heappush(answers, (at + receiver.travel, chat, weight))
    return sorted(counted, key=lambda s: s[0])


def test_sends_bunched_on_their_way_never_exceed_the_limit_where_telegram_counts_them() -> None:
    """Issue 18: the limiter spaced its sends by when they left, but Telegram (the emulator)
    counts them when they arrive. Requests held up on their way (a stalled receiver) arrive
    together with the next second's sends: an album's seven photos then overflowed the
    window. Whatever the delays, what arrives in any second stays within the limit."""
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=30, margin=0.03), clock)
    queues = {1000 + i: [1, 7, 1] for i in range(200)}
    counted = interleave_in_flight(limiter, clock, queues, StalledReceiver())
    model = TelegramModel(30)
    for t, chat, weight in counted:
        model.send(t, chat, weight)
    assert model.violations == 0
    total = sum(w for _, _, w in counted)
    assert total == 200 * 9
    span = counted[-1][0] - counted[0][0]
    assert span <= total / 30 * 1.10 + 8.5, (span, total / 30)


def test_a_chat_pays_back_an_album_from_when_telegram_answered_it() -> None:
    """An album held up on its way is counted by Telegram when it arrives: the chat's next
    message waits out the seven seconds from then, not from when the album left."""
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=30, margin=0.03), clock)
    limiter.record(7, False, weight=7)
    clock.t += 0.5  # on its way: Telegram counts it at some instant before its answer
    limiter.done(7, False, weight=7)
    clock.t += 7.0
    assert abs(limiter.delay(7, False) - 0.03) < 1e-9


def test_sends_recalled_after_a_restart_count_in_the_second_and_in_their_chats() -> None:
    """After a crash, what the predecessor had answered a moment ago (or had on its way: now)
    is still in Telegram's second, and its chats still pay it back."""
    clock = FakeClock()
    limiter = RateLimiter(SendLimits(per_second=30, margin=0.0), clock)
    limiter.recall(5, False, 7, at=clock.t - 0.4)
    limiter.recall(6, False, 7, at=clock.t)  # on its way at the crash
    limiter.recall(7, False, 7, at=clock.t - 0.9)  # older, learnt later: kept in order
    limiter.recall(8, False, 7, at=clock.t - 3.0)  # out of the second, still owed by its chat
    limiter._next_global = 0.0  # look at the window alone
    assert limiter.overall_delay(clock.t, weight=9) == 0.0  # 21 + 9 = 30
    assert abs(limiter.overall_delay(clock.t, weight=10) - 0.1) < 1e-9  # chat 7's leave first
    assert abs(limiter.delay(8, False) - 4.0) < 1e-9
    assert abs(limiter.delay(6, False) - 7.0) < 1e-9
