"""One database session per update, injected as `session`, with the use cases bound to it
as `services` (each made when first used); its reads ended before each Telegram call."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.types import TelegramObject
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.services import AppServices, UpdateServices
from bot.telegram.middlewares import Handler
from storage.session_reads import end_reads

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod


@dataclass(frozen=True)
class _UpdateSession:
    session: AsyncSession
    task: asyncio.Task[Any] | None


# The session of the update the current task is running, for the Bot API's request
# middleware below, which aiogram gives only the bot and the method.
_CURRENT: ContextVar[_UpdateSession | None] = ContextVar("consultbot_update_session", default=None)


class DbSessionMiddleware(BaseMiddleware):
    def __init__(self, app: AppContext, services: AppServices) -> None:
        self.app = app
        self.services = services
        self.sessionmaker = services.sessionmaker

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self.sessionmaker() as session:
            data["session"] = session
            data["services"] = UpdateServices(session, self.app, self.services)
            token = _CURRENT.set(_UpdateSession(session, asyncio.current_task()))
            try:
                return await handler(event, data)
            finally:
                _CURRENT.reset(token)


class EndReadsBeforeTelegram(BaseRequestMiddleware):
    """Before a Bot API call made by an update, end its session's transaction if it has only
    read: the pooled connection goes back while the update waits for Telegram (seconds, when
    the Bot API is slow), instead of starving the other updates (storage/session_reads.py).

    Only from the update's own task: a task it started shares its context, not its session's
    turn, and must not end the transaction under a statement of the update."""

    async def __call__(
        self, make_request: NextRequestMiddlewareType[Any], bot: Bot, method: TelegramMethod[Any]
    ) -> Response[Any]:
        current = _CURRENT.get()
        if current is not None and current.task is asyncio.current_task():
            await end_reads(current.session)
        return await make_request(bot, method)
