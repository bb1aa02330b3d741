"""Webhook mode: updates arrive by HTTP POST on 127.0.0.1, and the secret is checked."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import aiohttp

from tests.e2e.conftest import E2E, wait_button
from tests.support import survey_now


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_webhook_mode_answers_and_checks_the_secret(e2e: E2E) -> None:
    port = free_port()
    path = e2e.consultation(survey_now(datetime.now(UTC)))
    bot = e2e.bot(
        path,
        WEBHOOK_URL=f"http://127.0.0.1:{port}",
        WEBHOOK_SECRET="s3cret-token_for-tests",
        WEBHOOK_LISTEN=f"127.0.0.1:{port}",
    )
    await bot.start(ready_method="setWebhook")
    hook = e2e.emulator.calls_to("setWebhook")[-1].params
    assert hook["url"] == f"http://127.0.0.1:{port}/webhook"
    assert hook["secret_token"] == "s3cret-token_for-tests"

    anne = e2e.emulator.add_user(2001, "Anne", "fr")
    await anne.send("/start")
    await wait_button(anne, "Répondre au sondage")

    # A forged request without the secret is refused and changes nothing.
    forged = {
        "update_id": 999_999,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 2002, "type": "private"},
            "from": {"id": 2002, "is_bot": False, "first_name": "Mallory"},
            "text": "/start",
        },
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{port}/webhook", json=forged) as response:
            assert response.status == 401
        async with session.post(
            f"http://127.0.0.1:{port}/webhook",
            json=forged,
            headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
        ) as response:
            assert response.status == 401
    sends = e2e.emulator.calls_to("sendMessage")
    assert not [c for c in sends if str(c.params.get("chat_id")) == "2002"]
