"""Requests without a file go as one JSON body (bot/telegram/session.py): the member sees exactly
what aiogram's form would have shown, the emulator finds nothing against the Bot API, and an
upload still goes as multipart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError
from aiogram.methods import SendMessage, SendPhoto
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
)
from aiohttp import web

from bot.telegram.session import JsonSession, json_session, lean_loads
from playground import BotAPIEmulator
from tests.test_emulator import png

TOKEN = "123456:TEST-token"
ALICE = 1001


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator() as server:
        yield server
        assert not server.internal_errors, server.internal_errors


def make_bot(emu: BotAPIEmulator, session_class: type[AiohttpSession]) -> Bot:
    return Bot(
        TOKEN,
        session=session_class(api=TelegramAPIServer.from_base(emu.base_url)),
        # as bot/app.py sets it (link_preview_is_disabled sends a deprecated parameter)
        default=DefaultBotProperties(
            parse_mode=ParseMode.HTML, link_preview=LinkPreviewOptions(is_disabled=True)
        ),
    )


async def conversation(bot: Bot) -> None:
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="▫️ Été & co", callback_data="a\x1db:1")],
            [InlineKeyboardButton(text="Suivant ▶️", callback_data="a\x1dnext")],
        ]
    )
    sent = await bot.send_message(
        ALICE, "<b>Question 1/7</b>\nDéfis « prioritaires » ✅", reply_markup=markup
    )
    await bot.edit_message_text(
        "<i>Réponse</i> enregistrée : 0 % & 100 %",
        chat_id=ALICE,
        message_id=sent.message_id,
        reply_markup=markup,
    )
    await bot.send_message(ALICE, "plain", parse_mode=None, disable_notification=False)
    await bot.send_photo(ALICE, BufferedInputFile(png(40, 30), "chart.png"), caption="<b>1</b>")


async def test_members_see_what_the_form_showed_and_nothing_breaks_the_spec(
    emu: BotAPIEmulator,
) -> None:
    emu.add_user(ALICE, "Alice", language_code="fr")
    seen = []
    for session_class in (AiohttpSession, JsonSession):
        bot = make_bot(emu, session_class)
        await conversation(bot)
        await bot.session.close()
        seen.append(
            [
                (e.kind, e.text, e.buttons, e.entities, e.markup, e.edited)
                for e in emu.bot_messages(ALICE)[-3:]
            ]
        )
    assert seen[0] == seen[1]
    assert seen[1][0][1] == "Réponse enregistrée : 0 % & 100 %"
    emu.assert_no_violations()


async def test_json_body_only_without_files() -> None:
    session = JsonSession()
    bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    body = session.json_body(bot, SendMessage(chat_id=ALICE, text="x", disable_notification=False))
    # The bot's default parse mode is filled in; None is left out; False is sent.
    assert body == {
        "chat_id": ALICE,
        "text": "x",
        "parse_mode": "HTML",
        "disable_notification": False,
    }
    upload = SendPhoto(chat_id=ALICE, photo=BufferedInputFile(b"png", "chart.png"))
    assert session.json_body(bot, upload) is None
    await session.close()


async def test_errors_and_timeouts_are_aiogram_s() -> None:
    """A refused request raises what aiogram raises; an unreachable server, a network error."""
    app = web.Application()

    async def refuse(request: web.Request) -> web.Response:
        seen: dict[str, Any] = await request.json()
        assert request.content_type == "application/json" and seen["text"] == "x"
        return web.json_response(
            {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
            status=400,
        )

    app.router.add_post(f"/bot{TOKEN}/sendMessage", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    bot = Bot(
        TOKEN, session=JsonSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}"))
    )
    try:
        with pytest.raises(TelegramBadRequest, match="chat not found"):
            await bot.send_message(ALICE, "x")
    finally:
        await bot.session.close()
        await runner.cleanup()
    closed = Bot(
        TOKEN, session=JsonSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}"))
    )
    try:
        with pytest.raises(TelegramNetworkError):
            await closed.send_message(ALICE, "x", request_timeout=2)
    finally:
        await closed.session.close()


async def test_a_sent_message_and_a_dialog_tap_come_back_without_their_keyboard(
    emu: BotAPIEmulator,
) -> None:
    """The bot's session (`json_session`) drops the keyboard from a message result, which
    nothing reads back; the rest of the message is there. A callback's message keeps its
    keyboard (a moderator's card is read from it), unless the button is a dialog's."""
    emu.add_user(ALICE, "Alice", language_code="fr")
    bot = Bot(TOKEN, session=json_session(api=TelegramAPIServer.from_base(emu.base_url)))
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Oui", callback_data="yes")]]
    )
    try:
        sent = await bot.send_message(ALICE, "Question 1", reply_markup=markup)
        assert (sent.chat.id, sent.text, sent.reply_markup) == (ALICE, "Question 1", None)
        edited = await bot.edit_message_text(
            "Question 2", chat_id=ALICE, message_id=sent.message_id, reply_markup=markup
        )
        assert not isinstance(edited, bool)
        assert (edited.message_id, edited.text, edited.reply_markup) == (
            sent.message_id,
            "Question 2",
            None,
        )
        assert emu.bot_messages(ALICE)[-1].buttons  # Telegram got the keyboard
        keyboard = markup.model_dump(exclude_none=True)
        message = {"message_id": 1, "date": 0, "chat": {"id": ALICE, "type": "private"}}
        query = {"id": "q", "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"}}
        query |= {"chat_instance": "c", "data": "yes"}
        query["message"] = message | {"text": "Question 2", "reply_markup": keyboard}
        polled = {"ok": True, "result": [{"update_id": 1, "callback_query": query}]}
        kept = lean_loads(orjson.dumps(polled))["result"][0]["callback_query"]["message"]
        assert kept["reply_markup"] == keyboard
        # A dialog's button (aiogram-dialog's separator in its data): nothing reads it back.
        dialog = query | {"data": "intent\x1dq1:yes"}
        polled["result"].append({"update_id": 2, "callback_query": dialog})
        lean = lean_loads(orjson.dumps(polled))["result"]
        assert lean[0]["callback_query"]["message"]["reply_markup"] == keyboard
        assert "reply_markup" not in lean[1]["callback_query"]["message"]
        assert lean[1]["callback_query"]["message"]["text"] == "Question 2"
        # The same tap posted to the webhook (bot/telegram/webhook.py reads it with these).
        posted = lean_loads(orjson.dumps({"update_id": 3, "callback_query": dialog}))
        assert "reply_markup" not in posted["callback_query"]["message"]
        posted = lean_loads(orjson.dumps({"update_id": 4, "callback_query": query}))
        assert posted["callback_query"]["message"]["reply_markup"] == keyboard
    finally:
        await bot.session.close()
