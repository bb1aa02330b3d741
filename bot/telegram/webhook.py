"""Webhook requests with back-pressure: at most N updates handled at once, as in polling."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web


class BoundedRequestHandler(SimpleRequestHandler):
    """Answers Telegram only once a slot is free, so a burst waits at Telegram's side
    (which retries and holds at most `max_connections` requests open) instead of piling up
    tasks here."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, concurrency: int, **kwargs: Any) -> None:
        super().__init__(dispatcher=dispatcher, bot=bot, **kwargs)
        self.slots = asyncio.Semaphore(concurrency)

    async def _handle_request_background(self, bot: Bot, request: web.Request) -> web.Response:
        update = await request.json(loads=bot.session.json_loads)
        await self.slots.acquire()
        task = asyncio.create_task(self._background_feed_update(bot=bot, update=update))
        self._background_feed_update_tasks.add(task)
        task.add_done_callback(self._background_feed_update_tasks.discard)
        task.add_done_callback(lambda _: self.slots.release())
        return web.json_response({}, dumps=bot.session.json_dumps)
