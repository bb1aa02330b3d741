"""Failure on demand: injected faults (429/403/5xx) and Telegram's broadcast limits."""

from __future__ import annotations

import math
import time
from collections import deque

from .model import ApiError, Fault, Hold, LimitViolation, RateLimits, _Chat, _Req
from .state import EmulatorState


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

    async def _wait_if_held(self, req: _Req) -> None:
        chat_id = req.params.get("chat_id")
        for gate in self.holds:
            if gate.matches(req.method, chat_id):
                gate.held += 1
                await gate.released.wait()

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

    def disable_limits(self) -> None:
        self._limits = None

    def _matching_fault(self, req: _Req) -> Fault | None:
        if not self.faults:
            return None
        chat_id = req.params.get("chat_id")
        for fault in self.faults:
            if fault.matches(req.method, chat_id):
                return fault
        return None

    def _check_limits(self, req: _Req, chat: _Chat) -> None:
        lim = self._limits
        if lim is None:
            return
        now = time.monotonic()
        g = self._global_window
        _prune(g, now - 1.0)
        cap = lim.global_per_second * lim.scale
        if len(g) >= cap:
            self._limit_hit(req, chat, "global", cap, g[0] + 1.0 - now)
        if chat.type == "private":
            span, cap, kind = 1.0, lim.per_chat_per_second * lim.scale, "chat"
        else:
            span, cap, kind = 60.0, lim.per_group_per_minute * lim.scale, "group"
        w = chat.window
        _prune(w, now - span)
        if len(w) >= cap:
            self._limit_hit(req, chat, kind, cap, w[0] + span - now)
        g.append(now)
        w.append(now)

    def _limit_hit(self, req: _Req, chat: _Chat, kind: str, cap: float, wait: float) -> None:
        retry = max(1, math.ceil(wait))
        self.limit_violations.append(
            LimitViolation(time.monotonic(), req.method, chat.id, kind, cap, retry)
        )
        raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})


def _prune(window: deque[float], horizon: float) -> None:
    while window and window[0] <= horizon:
        window.popleft()
