"""The webhook server: an update is acknowledged only once it is handled; a stopping server
refuses new ones with 503 (Telegram sends them again, to whichever instance answers) and
lets the accepted ones finish; `/healthz` says which of the two it is doing.

Why handle before answering: Telegram forgets an update once it got 200. Answering first and
handling in the background (aiogram's default) loses every update in flight when the process
stops or dies. Handling first costs nothing in throughput: Telegram keeps up to
`max_connections` requests open at once (set by setWebhook), one per chat at a time, so the
updates of different members are still handled side by side, and a crowd waits on Telegram's
side instead of in this process. An update that fails with an error is acknowledged all the
same (logged, as in polling): sent again, it would fail again and hold its chat's queue.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiohttp import web

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram gives up on a request after about a minute and sends the update again: an update
# still running by then is acknowledged and finishes in the background (rare: an export).
ANSWER_WITHIN = 50.0


class WebhookHandler:
    """POST /webhook and GET /healthz."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        bot: Bot,
        secret_token: str | None,
        concurrency: int,
        answer_within: float = ANSWER_WITHIN,
    ) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.secret_token = secret_token
        self.slots = asyncio.Semaphore(concurrency)
        self.answer_within = answer_within
        self.stopping = False
        self.late: set[asyncio.Task[None]] = set()  # updates answered before they finished

    def register(self, app: web.Application, path: str = "/webhook") -> None:
        app.router.add_post(path, self.handle)
        app.router.add_get("/healthz", self.health)

    def stop_accepting(self) -> None:
        self.stopping = True

    async def health(self, _request: web.Request) -> web.Response:
        if self.stopping:
            return web.Response(status=503, text="stopping")
        return web.Response(text="ok")

    def _authentic(self, request: web.Request) -> bool:
        if not self.secret_token:
            return True
        given = request.headers.get(SECRET_HEADER, "")
        return secrets.compare_digest(given.encode(), self.secret_token.encode())

    @staticmethod
    def _unavailable() -> web.Response:
        return web.Response(status=503, text="stopping", headers={"Retry-After": "1"})

    async def handle(self, request: web.Request) -> web.Response:
        # A wrong or missing secret first: whoever is not Telegram learns nothing else.
        if not self._authentic(request):
            return web.Response(status=401, text="Unauthorized")
        if self.stopping:
            return self._unavailable()
        try:
            update = await request.json(loads=self.bot.session.json_loads)
        except ValueError:
            return web.Response(status=400, text="Bad Request")
        async with self.slots:
            if self.stopping:  # stopped while this one waited for a slot: not accepted
                return self._unavailable()
            task = asyncio.create_task(self._feed(update))
            done, _ = await asyncio.wait({task}, timeout=self.answer_within)
            if not done:
                log.warning(
                    "update %s still running after %.0f s: acknowledged, finishing in the "
                    "background",
                    update.get("update_id"),
                    self.answer_within,
                )
                self.late.add(task)
                task.add_done_callback(self.late.discard)
        return web.json_response({})

    async def _feed(self, update: dict[str, Any]) -> None:
        try:
            result = await self.dispatcher.feed_raw_update(self.bot, update)
            if isinstance(result, TelegramMethod):
                await self.dispatcher.silent_call_request(bot=self.bot, result=result)
        except Exception:
            log.exception("error while handling update %s", update.get("update_id"))
