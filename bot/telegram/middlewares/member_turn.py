"""aiogram's FSM middleware without the read of the default FSM state at every update.

It does two things: it holds the member's lock for the whole update (one update at a time
per member), and it reads the member's default FSM state for handlers filtered by state.
ConsultBot has no such handler (aiogram-dialog keeps its own stacks, under other keys), so
the read is pure cost: a Redis round trip per tap on PostgreSQL + Redis.
`tests/test_member_lock.py` checks that no handler filters by state.
"""

from __future__ import annotations

from typing import Any, cast

from aiogram import Bot
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.types import TelegramObject

from bot.telegram.middlewares import Handler


class MemberTurn(FSMContextMiddleware):
    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        context = self.resolve_event_context(cast(Bot, data["bot"]), data)
        data["fsm_storage"] = self.storage
        if context is None:
            return await handler(event, data)
        async with self.events_isolation.lock(key=context.key):
            data["state"] = context
            return await handler(event, data)
