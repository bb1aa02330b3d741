"""Failure on demand: injected faults (429/403/5xx) and Telegram's broadcast limits."""

from __future__ import annotations

import math
import time
from collections import deque

from .model import ApiError, Fault, Hold, LimitViolation, RateLimits, _Chat, _Req
from .state import EmulatorState

PAID_PER_SECOND = 1000  # api.json, allow_paid_broadcast: "up to 1000 messages per second"


class LimitsMixin(EmulatorState):
    """Faults a test injects, and 429s beyond the rate limits it enforces."""

    def inject_fault(
        self,
        method: str | None = "sendMessage",
        chat_id: int | None = None,
        code: int = 429,
        retry_after: int = 1,
        times: int = 1,
        description: str | None = None,
    ) -> Fault:
        """The next `times` matching calls fail with `code` (and are not delivered)."""
        fault = Fault(method, chat_id, code, retry_after, times, description)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def hold(self, method: str | None = None, chat_id: int | None = None) -> Hold:
        """Matching calls (validated, not yet run) wait until `.release()`: a test can keep a
        handler busy for as long as it checks what must not wait for it."""
        gate = Hold(method, chat_id)
        self.holds.append(gate)
        return gate

    async def _wait_if_held(self, req: _Req) -> bool:
        """False when a hold dropped the call: it must not run."""
        chat_id = req.params.get("chat_id")
        for gate in self.holds:
            if gate.matches(req.method, chat_id):
                gate.held += 1
                await gate.released.wait()
                if gate.dropped:
                    return False
        return True

    def enforce_limits(
        self,
        global_per_second: float = 30,
        per_chat_per_second: float = 1,
        per_group_per_minute: float = 20,
        scale: float = 1.0,
    ) -> None:
        """Answer 429 to sends beyond Telegram's broadcast limits (sliding windows)."""
        self._limits = RateLimits(
            global_per_second, per_chat_per_second, per_group_per_minute, scale
        )
        self._global_window.clear()
        for chat in self._chats.values():
            chat.window.clear()
            chat.ready_at = 0.0

    def disable_limits(self) -> None:
        self._limits = None

    def _told_to_wait(self, req: _Req, fault: Fault) -> None:
        """A 429 for a chat (Telegram's flood control for it) concerns that chat: it waits
        retry_after, the others do not."""
        chat = self._chats.get(req.params.get("chat_id"))
        if fault.code == 429 and chat is not None:
            chat.told_until = max(chat.told_until, time.monotonic() + fault.retry_after)

    def _matching_fault(self, req: _Req) -> Fault | None:
        if not self.faults:
            return None
        chat_id = req.params.get("chat_id")
        for fault in self.faults:
            if fault.matches(req.method, chat_id):
                return fault
        return None

    def _check_limits(self, req: _Req, chat: _Chat, messages: int = 1) -> None:
        """`messages` as Telegram counts them: each item of an album counts, against the overall
        and the chat's limits alike. A private chat pays back what it sent at its rate (one
        album on a rested chat passes, and the chat then waits it out); a group has its
        per-minute window. A paid broadcast (allow_paid_broadcast) may go up to 1000/s overall:
        what goes beyond the free rate is counted in `paid_messages` (0.1 Star each)."""
        lim = self._limits
        if lim is None:
            return
        now = time.monotonic()
        if chat.told_until > now:
            cap = lim.per_chat_per_second * lim.scale
            self._limit_hit(req, chat, "retry_after", cap, chat.told_until - now)
        g = self._global_window
        _prune(g, now - 1.0)
        free = lim.global_per_second * lim.scale
        paid = bool(req.params.get("allow_paid_broadcast"))
        cap = max(free, PAID_PER_SECOND * lim.scale) if paid else free
        if len(g) + messages > cap:
            self._limit_hit(req, chat, "global", cap, _until_room(g, messages, cap, 1.0, now))
        if chat.type == "private":
            interval = 1.0 / (lim.per_chat_per_second * lim.scale)
            if chat.ready_at > now:
                cap = lim.per_chat_per_second * lim.scale
                self._limit_hit(req, chat, "chat", cap, chat.ready_at - now)
            chat.ready_at = now + messages * interval
        else:
            span, group_cap = 60.0, lim.per_group_per_minute * lim.scale
            w = chat.window
            _prune(w, now - span)
            if len(w) + messages > group_cap:
                wait = _until_room(w, messages, group_cap, span, now)
                self._limit_hit(req, chat, "group", group_cap, wait)
            w.extend([now] * messages)
        if paid:
            self.paid_messages += max(0, min(messages, len(g) + messages - int(free)))
        g.extend([now] * messages)

    def _limit_hit(self, req: _Req, chat: _Chat, kind: str, cap: float, wait: float) -> None:
        retry = max(1, math.ceil(wait))
        self.limit_violations.append(
            LimitViolation(time.monotonic(), req.method, chat.id, kind, cap, retry)
        )
        raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})


def _prune(window: deque[float], horizon: float) -> None:
    while window and window[0] <= horizon:
        window.popleft()


def _until_room(window: deque[float], messages: int, cap: float, span: float, now: float) -> float:
    """Seconds until `messages` more fit in the sliding window."""
    if not window:
        return span
    over = int(len(window) + messages - cap)  # entries that must leave first
    return window[min(len(window) - 1, max(0, over - 1))] + span - now
