"""Outgoing-request middleware: a callback query is answered once.

Our handlers answer with an alert, then aiogram-dialog answers every callback again after
rendering; Telegram rejects the second answer. Dropping it here keeps both behaviours.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import AnswerCallbackQuery, Response

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod

REMEMBERED = 10_000


class AnswerCallbackOnce(BaseRequestMiddleware):
    def __init__(self) -> None:
        self.answered: OrderedDict[str, None] = OrderedDict()

    async def __call__(
        self, make_request: NextRequestMiddlewareType[Any], bot: Bot, method: TelegramMethod[Any]
    ) -> Response[Any]:
        if isinstance(method, AnswerCallbackQuery):
            if method.callback_query_id in self.answered:
                return Response[bool](ok=True, result=True)
            self.answered[method.callback_query_id] = None
            while len(self.answered) > REMEMBERED:
                self.answered.popitem(last=False)
        return await make_request(bot, method)
