"""One database session per update, injected as `session`, with the use cases bound to it
as `services` (each made when first used)."""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

from bot.context import AppContext
from bot.services import AppServices, UpdateServices
from bot.telegram.middlewares import Handler


class DbSessionMiddleware(BaseMiddleware):
    def __init__(self, app: AppContext, services: AppServices) -> None:
        self.app = app
        self.services = services
        self.sessionmaker = services.sessionmaker

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self.sessionmaker() as session:
            data["session"] = session
            data["services"] = UpdateServices(session, self.app, self.services)
            return await handler(event, data)
