"""Keeps aiogram's parsed-response classes alive between requests.

aiogram validates every Bot API answer with `Response[<return type>]`. pydantic keeps such
parametrised classes in a weak cache: once the garbage collector frees one, the next request
builds it again (schema and validator, about a millisecond). Holding one strong reference per
method type makes every later request reuse it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import Response

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod


class PinnedResponseTypes(BaseRequestMiddleware):
    def __init__(self) -> None:
        self.pinned: dict[type, Any] = {}
        self.held: tuple[type, ...] = ()

    def hold(self, models: tuple[type, ...]) -> None:
        """Keep these result models (built before the first request) alive too."""
        self.held = models

    async def __call__(
        self, make_request: NextRequestMiddlewareType[Any], bot: Bot, method: TelegramMethod[Any]
    ) -> Response[Any]:
        kind = type(method)
        if kind not in self.pinned:
            self.pinned[kind] = Response[method.__returning__]  # type: ignore[name-defined]
        return await make_request(bot, method)
