"""At most N updates doing work at once, counted once each member's turn has come.

aiogram's FSM middleware makes a member's updates wait for each other. Bounding concurrency
before that wait (polling's `tasks_concurrency_limit`) lets a few busy members hold every
slot while they queue on their own locks, and then nobody else is even answered. Here the
slot is taken after the member's lock, so waiting costs nothing but a small task.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

from bot.telegram.middlewares import Handler


class WorkSlots(BaseMiddleware):
    def __init__(self, slots: int) -> None:
        self.slots = asyncio.Semaphore(slots)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self.slots:
            return await handler(event, data)
