"""Telegram's sending limits as a pure, clock-driven scheduler (unit-tested with a fake clock)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

CATCH_UP = 3  # messages a late sender may send back to back


@dataclass
class SendLimits:
    per_second: float = 25.0  # overall
    private_interval: float = 1.0  # seconds between two messages to one private chat
    group_per_minute: int = 20
    # Our clock and Telegram's differ by the request's travel time: keep a small margin
    # (seconds added to every window, i.e. about 3 % below the overall limit).
    margin: float = 0.03


@dataclass
class RateLimiter:
    """Answers "how long until I may send to this chat?" and records sends.

    Overall: sends evenly spaced at `per_second` (bursts, however short, are what a receiver's
    window counts against us), and never more than `per_second` in a sliding second. Private
    chats: one message per `private_interval`. Groups: `group_per_minute` in any sliding minute.
    """

    limits: SendLimits
    clock: Callable[[], float]
    _recent: deque[float] = field(default_factory=deque)
    _last_private: dict[int, float] = field(default_factory=dict)
    _group_window: dict[int, deque[float]] = field(default_factory=dict)
    _paused_until: float = 0.0
    _next_global: float = 0.0

    def pause(self, seconds: float) -> None:
        """After a 429: nothing goes out before `seconds` have passed."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    def delay(self, chat_id: int, is_group: bool) -> float:
        now = self.clock()
        wait = max(0.0, self._paused_until - now, self._next_global - now)
        window = 1.0 + self.limits.margin
        capacity = max(1, int(self.limits.per_second))
        while self._recent and self._recent[0] <= now - window:
            self._recent.popleft()
        if len(self._recent) >= capacity:
            wait = max(wait, self._recent[0] + window - now)
        if is_group:
            sends = self._group_window.get(chat_id)
            if sends is not None:
                while sends and sends[0] <= now - 60.0 - self.limits.margin:
                    sends.popleft()
                if len(sends) >= self.limits.group_per_minute:
                    wait = max(wait, sends[0] + 60.0 + self.limits.margin - now)
        else:
            last = self._last_private.get(chat_id)
            if last is not None:
                wait = max(wait, last + self.limits.private_interval + self.limits.margin - now)
        return wait

    def restamp(self, chat_id: int, is_group: bool) -> None:
        """A send recorded earlier really leaves now (it waited, e.g. for an upload): the
        chat's interval counts from now, or its next message could arrive less than 1 s later."""
        now = self.clock()
        if is_group:
            sends = self._group_window.get(chat_id)
            if sends:
                sends[-1] = max(sends[-1], now)
        else:
            self._last_private[chat_id] = max(self._last_private.get(chat_id, now), now)

    def record(self, chat_id: int, is_group: bool) -> None:
        now = self.clock()
        self._recent.append(now)
        gap = (1.0 + self.limits.margin) / self.limits.per_second
        # A sender that fell behind (a database round trip between batches) may catch up
        # with a few messages in a row; the sliding second above still caps the total.
        self._next_global = max(now - CATCH_UP * gap, self._next_global) + gap
        if is_group:
            self._group_window.setdefault(chat_id, deque()).append(now)
        else:
            self._last_private[chat_id] = now
            if len(self._last_private) > 50_000:
                horizon = now - self.limits.private_interval
                self._last_private = {k: v for k, v in self._last_private.items() if v > horizon}
