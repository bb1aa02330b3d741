"""Spaces getUpdates polls while updates keep coming, so a crowd arrives in batches.

Long polling answers as soon as one update is waiting. Under a crowd, polling again right
after each batch fetches one or two updates per request: on loopback that was nearly one
getUpdates per tap, each a full request and response to parse (a tenth of the bot's CPU in
the load benchmark). After a batch, the next poll waits until `interval` has passed since
the previous one was sent, or until the bot has handled every update it holds, whichever
comes first: a bot with nothing left to do polls at once (as after an empty poll, or a first
one), so a lone member's tap, or a small crowd's, is not held back. Only a bot still busy
with the previous batch waits, and then its CPU is better spent on that batch than on a
request per update.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import GetUpdates

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod


class PollPacing(BaseRequestMiddleware):
    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        quiet: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        """`quiet(seconds)` returns after that long, or earlier once no update is being
        handled (`UpdatesInFlight.quiet`)."""
        self.interval = interval
        self.clock = clock
        self.quiet = quiet
        self.last_sent = 0.0
        self.busy = False  # the previous poll brought updates

    async def __call__(
        self, make_request: NextRequestMiddlewareType[Any], bot: Bot, method: TelegramMethod[Any]
    ) -> Any:
        if not isinstance(method, GetUpdates):
            return await make_request(bot, method)
        if self.busy:
            wait = self.last_sent + self.interval - self.clock()
            if wait > 0:
                await self.quiet(wait)
        self.last_sent = self.clock()
        self.busy = False
        updates = await make_request(bot, method)
        self.busy = bool(updates)
        return updates
