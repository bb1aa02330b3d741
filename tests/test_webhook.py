"""The webhook server acknowledges an update only once it is handled; stopping, it refuses new
ones with 503 and lets the accepted ones finish; /healthz follows; a wrong or missing secret
is refused with no effect. A real Dispatcher behind the real aiohttp handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Message
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.telegram.middlewares.in_flight import UpdatesInFlight
from bot.telegram.webhook import SECRET_HEADER, WebhookHandler

SECRET = "a-webhook-secret-of-tests"
GOOD = {SECRET_HEADER: SECRET}


def update(update_id: int, text: str = "/start", chat: int = 7) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "M"},
            "text": text,
        },
    }


class Harness:
    def __init__(self) -> None:
        self.in_flight = UpdatesInFlight()
        self.dp = Dispatcher()
        self.dp.update.outer_middleware(self.in_flight)
        self.started: list[str] = []
        self.handled: list[str] = []
        self.release = asyncio.Event()
        self.slow_started = asyncio.Event()
        self.dp.message.register(self.on_message)
        self.bot = Bot("123456789:AAE2e-test-token-xxxxxxxxxxxxxxxxxxxxx")
        self.handler = WebhookHandler(self.dp, self.bot, SECRET, concurrency=10)

    async def on_message(self, message: Message) -> None:
        self.started.append(message.text or "")
        if message.text == "/slow":
            self.slow_started.set()
            await self.release.wait()
        if message.text == "/boom":
            raise RuntimeError("a handler's bug")
        self.handled.append(message.text or "")


@pytest.fixture
async def harness() -> AsyncIterator[tuple[Harness, TestClient[Any, Any]]]:
    h = Harness()
    app = web.Application()
    h.handler.register(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield h, client
    finally:
        h.release.set()
        await client.close()
        await h.bot.session.close()


async def test_an_update_is_acknowledged_only_once_handled(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    post = asyncio.create_task(client.post("/webhook", json=update(1, "/slow"), headers=GOOD))
    await asyncio.wait_for(h.slow_started.wait(), 10)
    # Another member's update is handled meanwhile: one slow update holds nobody else.
    response = await client.post("/webhook", json=update(2, "/fast", chat=8), headers=GOOD)
    assert response.status == 200 and h.handled == ["/fast"]
    assert not post.done()  # not acknowledged while its handler runs
    h.release.set()
    assert (await post).status == 200
    assert h.handled == ["/fast", "/slow"]
    # A handler's error is logged and the update acknowledged: sent again, it would fail again.
    response = await client.post("/webhook", json=update(3, "/boom"), headers=GOOD)
    assert response.status == 200 and h.started[-1] == "/boom"


async def test_stopping_refuses_new_updates_and_finishes_the_accepted_ones(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    assert (await client.get("/healthz")).status == 200
    post = asyncio.create_task(client.post("/webhook", json=update(1, "/slow"), headers=GOOD))
    await asyncio.wait_for(h.slow_started.wait(), 10)
    assert h.in_flight.count == 1

    h.handler.stop_accepting()
    assert (await client.get("/healthz")).status == 503
    refused = await client.post("/webhook", json=update(2, "/late", chat=8), headers=GOOD)
    assert refused.status == 503 and refused.headers["Retry-After"] == "1"
    assert await h.in_flight.drain(0.05) == 1  # still running: the drain gives up in time

    draining = asyncio.create_task(h.in_flight.drain(30))
    h.release.set()
    assert await draining == 0
    assert (await post).status == 200
    assert h.handled == ["/slow"]  # never "/late": Telegram sends it again elsewhere


@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET[:-1]}])
async def test_a_wrong_or_missing_secret_is_refused_with_no_effect(
    harness: tuple[Harness, TestClient[Any, Any]], headers: dict[str, str]
) -> None:
    h, client = harness
    response = await client.post("/webhook", json=update(1, "/start"), headers=headers)
    assert response.status == 401
    h.handler.stop_accepting()  # stopping or not, the secret comes first
    response = await client.post("/webhook", json=update(2, "/start"), headers=headers)
    assert response.status == 401
    assert h.started == [] and h.in_flight.count == 0
