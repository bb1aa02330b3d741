"""Telegram's sending limits as a pure, clock-driven scheduler (unit-tested with a fake clock).

Every send has a weight: the messages Telegram counts for it, one per photo of an album
(sendMediaGroup). The weight counts against the overall budget and against the chat's.

Telegram counts a send when it arrives, at some instant between when it left (`record`) and
when its answer came back (`done`); a request held up on its way (a busy machine, a slow
network) arrives together with the ones sent after it. So a send counts against the overall
second from when it leaves until a second after its answer, and against its chat from its
answer: then no window as Telegram measures it can hold more than the limit, whatever the
delays (tests/test_ratelimit.py, the StalledReceiver)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.config import Settings

# A sender that fell behind its schedule (its loop busy with a query, the machine with other
# work) may send a tenth of a second's worth back to back, at least 3: without it each stall
# is lost for good. The sliding second below still caps what any second of Telegram's holds.
CATCH_UP = 3
CATCH_UP_SECONDS = 0.1
# Telegram's overall window. A send counts in it until a second after its answer, by when
# Telegram has counted it for sure: no margin is needed for the travel time.
WINDOW = 1.0
# A 429 answers one request to one chat: while our own pacing keeps the overall rate under the
# limit, it is about that chat (its per-chat or per-group limit). 429s from this many distinct
# chats within their retry_after + FLOOD_SPAN seconds mean the overall limit is hit after all
# (another bot or instance on the token, Telegram slowing down): everything pauses.
FLOOD_CHATS = 3
FLOOD_SPAN = 1.0
# After such an overall pause, the overall rate stays this much lower for SLOW_FOR seconds.
SLOW_FACTOR = 1.1
SLOW_FOR = 30.0


@dataclass
class SendLimits:
    per_second: float = 25.0  # overall
    private_interval: float = 1.0  # seconds a private chat pays back per message sent to it
    group_per_minute: int = 20
    # Seconds added to the even spacing of sends (about 3 % below the overall limit) and to a
    # chat's pay-back; the travel time of a request itself is counted (see `done`).
    margin: float = 0.03
    # Telegram's allow_paid_broadcast (up to 1000 messages/s overall, paid in Stars): sent
    # with every outbox message when set; `per_second` is then the paid rate.
    paid: bool = False


def send_limits(settings: Settings) -> SendLimits:
    """The outbox's limits from the configuration (paid broadcasts raise the overall rate)."""
    if settings.paid_broadcast:
        return SendLimits(per_second=settings.paid_broadcast_rate, paid=True)
    return SendLimits(per_second=settings.broadcast_rate)


@dataclass
class RateLimiter:
    """Answers "how long until I may send this many messages to this chat?" and records sends.

    Overall: sends evenly spaced at `per_second` (bursts, however short, are what a receiver's
    window counts against us), an album taking as many slots as it has photos, and never more
    than `per_second` in a sliding second. Private chats: one album (or message) goes to a
    rested chat at once, then the chat pays back `private_interval` per message before the next
    one there. Groups: `group_per_minute` in any sliding minute.
    """

    limits: SendLimits
    clock: Callable[[], float]
    _recent: deque[float] = field(default_factory=deque)  # one entry per message answered
    _in_flight: int = 0  # messages sent and not answered yet: Telegram may count them any time
    _chat_ready: dict[int, float] = field(default_factory=dict)  # private chat -> debt paid at
    _group_window: dict[int, deque[float]] = field(default_factory=dict)
    _held: dict[int, float] = field(default_factory=dict)  # chat -> told 429 until
    _floods: deque[tuple[float, int, float]] = field(default_factory=deque)  # 429s: at, chat, s
    _paused_until: float = 0.0
    _slow_until: float = 0.0
    _next_global: float = 0.0

    def pause(self, seconds: float) -> None:
        """The overall limit is hit: nothing goes out before `seconds` have passed, and the
        overall rate stays a little lower for a while after that."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)
        self._slow_until = max(self._slow_until, self._paused_until + SLOW_FOR)

    def flood(self, chat_id: int, is_group: bool, retry_after: float) -> float:
        """A 429 answered a send to this chat: the chat waits `retry_after`. Returns the
        overall pause when 429s from several chats at once say the overall limit is hit,
        else 0 (the others go on)."""
        now = self.clock()
        self._held[chat_id] = max(self._held.get(chat_id, now), now + retry_after)
        floods = self._floods
        floods.append((now, chat_id, retry_after))
        recent = [f for f in floods if f[0] + f[2] + FLOOD_SPAN >= now]
        self._floods = deque(recent)
        if len({chat for _, chat, _ in recent}) < FLOOD_CHATS:
            return 0.0
        seconds = max(wait for _, _, wait in recent)
        self.pause(seconds)
        return seconds

    def delay(self, chat_id: int, is_group: bool, weight: int = 1) -> float:
        now = self.clock()
        return max(self.overall_delay(now, weight), self.chat_delay(chat_id, is_group, weight, now))

    def overall_delay(self, now: float, weight: int = 1) -> float:
        """An album of `weight` photos takes `weight` consecutive slots and leaves at the last
        one: the slots before it stay empty. The sender commits to a send before waiting
        for this (nothing else takes those slots meanwhile).

        The sliding second counts what is on its way and what was answered less than a second
        ago: a send Telegram counted at any instant before its answer is in every window of
        Telegram's that this send could arrive in."""
        gap = self._gap(now)
        slot = self._next_global + (weight - 1) * gap
        wait = max(0.0, self._paused_until - now, slot - now)
        capacity = max(1, int(self.limits.per_second))
        recent = self._recent
        while recent and recent[0] <= now - WINDOW:
            recent.popleft()
        over = len(recent) + self._in_flight + min(weight, capacity) - capacity
        if over > len(recent):  # some on their way must leave first: a second after answered
            wait = max(wait, WINDOW)
        elif over > 0:  # the oldest answered ones must leave the second first
            wait = max(wait, recent[over - 1] + WINDOW - now)
        return wait

    def chat_delay(self, chat_id: int, is_group: bool, weight: int, now: float) -> float:
        held = max(0.0, self._held.get(chat_id, now) - now)
        if not is_group:
            return max(held, self._chat_ready.get(chat_id, now) - now)
        sends = self._group_window.get(chat_id)
        if not sends:
            return held
        span = 60.0 + self.limits.margin
        while sends and sends[0] <= now - span:
            sends.popleft()
        cap = self.limits.group_per_minute
        over = len(sends) + min(weight, cap) - cap
        return max(held, sends[over - 1] + span - now) if over > 0 else held

    def busy_chats(self, horizon: float) -> dict[int, float]:
        """Private chats still paying back for longer than `horizon` seconds -> their wait:
        the sender leaves them out of its next claim, so that one chat's debt (an album's
        seven seconds) holds a slot of nobody else's."""
        now = self.clock()
        busy: dict[int, float] = {}
        paid_back = []
        for chat_id, ready in self._chat_ready.items():
            if ready <= now:
                paid_back.append(chat_id)
            elif ready - now > horizon:
                busy[chat_id] = ready - now
        for chat_id in paid_back:  # forgotten once paid back: the map holds only debtors
            del self._chat_ready[chat_id]
        for chat_id, until in list(self._held.items()):
            if until <= now:
                del self._held[chat_id]
            elif until - now > horizon:
                busy[chat_id] = max(busy.get(chat_id, 0.0), until - now)
        return busy

    def restamp(self, chat_id: int, is_group: bool, weight: int = 1) -> None:
        """A send recorded earlier really leaves now (it waited, e.g. for an upload): the
        chat's debt counts from now, or its next message could arrive too early."""
        now = self.clock()
        if is_group:
            sends = self._group_window.get(chat_id)
            for i in range(1, min(weight, len(sends or ())) + 1):
                assert sends is not None
                sends[-i] = max(sends[-i], now)
        else:
            self._chat_ready[chat_id] = max(
                self._chat_ready.get(chat_id, now), now + self._payback(weight)
            )

    def record(self, chat_id: int, is_group: bool, weight: int = 1) -> None:
        """A send leaves now; `done` is told when its answer (or error) comes back."""
        now = self.clock()
        self._in_flight += weight
        gap = self._gap(now)
        # A sender that fell behind (a database round trip between batches) may catch up
        # with a few messages in a row; the sliding second above still caps the total.
        slot = self._next_global + (weight - 1) * gap
        self._next_global = max(now - self.catch_up() * gap, slot) + gap
        self.owe(chat_id, is_group, weight, now)

    def done(self, chat_id: int, is_group: bool, weight: int = 1) -> None:
        """A send's answer came back (or it failed): Telegram counted it by now, at the
        latest. It stays in the overall second for one more second, and its chat pays it
        back from now."""
        self._in_flight = max(0, self._in_flight - weight)
        self._recent.extend([self.clock()] * weight)
        self.restamp(chat_id, is_group, weight)

    def recall(self, chat_id: int, is_group: bool, weight: int, at: float) -> None:
        """A send answered at `at` (by a predecessor, before a restart; `at` may be now for
        one in flight at a crash): its chat pays it back, and the overall second counts it."""
        self.owe(chat_id, is_group, weight, at)
        if at > self.clock() - WINDOW:
            self._recent.extend([at] * weight)
            if len(self._recent) > weight and self._recent[-weight - 1] > at:
                self._recent = deque(sorted(self._recent))

    def owe(self, chat_id: int, is_group: bool, weight: int, at: float) -> None:
        """`weight` messages went to the chat at `at` (e.g. before a restart, read from the
        outbox): its next message waits until they are paid back."""
        if is_group:
            sends = self._group_window.setdefault(chat_id, deque())
            late = bool(sends) and sends[-1] > at  # an older send learnt late
            sends.extend([at] * weight)
            if late:
                self._group_window[chat_id] = deque(sorted(sends))
        else:
            ready = self._chat_ready.get(chat_id, at)
            self._chat_ready[chat_id] = max(ready, at) + self._payback(weight)

    def defer(self, chat_id: int, seconds: float) -> None:
        """A private chat is not ready for `seconds` (another instance sent there)."""
        ready = self.clock() + seconds
        self._chat_ready[chat_id] = max(self._chat_ready.get(chat_id, ready), ready)

    def catch_up(self) -> int:
        """Messages a late sender may send back to back."""
        return max(CATCH_UP, int(self.limits.per_second * CATCH_UP_SECONDS))

    def _gap(self, now: float) -> float:
        """Seconds between two sends overall: a little more for a while after an overall
        pause (the limit was hit: something else shares it)."""
        gap = (1.0 + self.limits.margin) / self.limits.per_second
        return gap * SLOW_FACTOR if now < self._slow_until else gap

    def _payback(self, weight: int) -> float:
        return weight * self.limits.private_interval + self.limits.margin
