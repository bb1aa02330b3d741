"""Per-user flood control: a token bucket per user, kept in this middleware instance."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User

from bot.context import AppContext
from bot.i18n import Translator, pick_language
from bot.telegram.middlewares import Handler


class ThrottlingMiddleware(BaseMiddleware):
    def __init__(
        self,
        app: AppContext,
        translator: Translator,
        rate: float = 4.0,
        burst: int = 12,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.translator = translator
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.buckets: dict[int, tuple[float, float, bool]] = {}

    def allow(self, user_id: int) -> tuple[bool, bool]:
        """(allowed, warn): warn once per flood so the member knows why nothing happens."""
        now = self.clock()
        tokens, last, warned = self.buckets.get(user_id, (float(self.burst), now, False))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1:
            self.buckets[user_id] = (tokens - 1, now, False)
            return True, False
        self.buckets[user_id] = (tokens, now, True)
        if len(self.buckets) > 10_000:
            self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < 60}
        return False, not warned

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        # The outermost of ours: a flooded update costs no database work at all.
        query = event.callback_query if isinstance(event, Update) else None
        message = event.message if isinstance(event, Update) else None
        user: User | None = data.get("event_from_user")
        if user is None or (query is None and message is None):
            return await handler(event, data)
        allowed, warn = self.allow(user.id)
        if allowed:
            return await handler(event, data)
        app = self.app
        lang = pick_language([user.language_code], app.languages) or app.default_language
        text = self.translator.gettext(
            "Doucement, s’il vous plaît : réessayez dans un instant.", locale=lang
        )
        if query is not None:
            await query.answer(text)
        elif message is not None and warn and message.chat.type == "private":
            await message.answer(text)
        return None
