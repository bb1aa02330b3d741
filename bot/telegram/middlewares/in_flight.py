"""The updates being handled right now, so that a stopping process can let them finish.

Telegram considers an update delivered once polling asks for the next offset or the webhook
answered 200: an update cut short by the shutdown is not sent again. The outermost
middleware counts them; `drain` waits until none is left (or the time is up).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject


class UpdatesInFlight(BaseMiddleware):
    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self.count += 1
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def quiet(self, timeout: float) -> None:
        """Wait until no update is being handled, at most `timeout` seconds."""
        # Polling starts each update as a task: let those created just before this reach
        # the middleware first (nothing awaits on their way here).
        await asyncio.sleep(0)
        if self.count == 0:
            return
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            pass

    async def drain(self, timeout: float) -> int:
        """Wait until no update is being handled, at most `timeout` seconds; how many are
        still running then."""
        await self.quiet(timeout)
        return self.count
