"""Tests of the Bot API emulator itself, driven by a real aiogram Bot."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.filters import CommandObject, CommandStart
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    KeyboardButton,
    LinkPreviewOptions,
    MenuButtonCommands,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
)
from aiohttp import web

from playground import BotAPIEmulator, BotApiSpec, SimUser, parse_html
from playground.emulator import spec as emulator_spec
from playground.emulator import validation as emulator_validation
from playground.spec import HtmlParseError

TOKEN = "123456:TEST-token"
ALICE = 1001
BOB = 1002
GROUP = -1001234567890


def png(width: int = 40, height: int = 30) -> bytes:
    """A valid PNG, so that the emulator's image check passes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\x80" * 3 * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def keyboard(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=t, callback_data=d) for t, d in row] for row in rows
        ]
    )


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator() as server:
        yield server
        assert not server.internal_errors, server.internal_errors


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url))
    the_bot = Bot(
        TOKEN,
        session=session,
        # link_preview, as the bot sets it: link_preview_is_disabled sends a deprecated parameter
        default=DefaultBotProperties(
            parse_mode=ParseMode.HTML, link_preview=LinkPreviewOptions(is_disabled=True)
        ),
    )
    yield the_bot
    await session.close()


@pytest.fixture
def alice(emu: BotAPIEmulator) -> SimUser:
    return emu.add_user(ALICE, "Alice", language_code="fr", username="alice")


@asynccontextmanager
async def polling(emu: BotAPIEmulator, dp: Dispatcher, bot: Bot) -> AsyncIterator[None]:
    task = asyncio.create_task(
        dp.start_polling(bot, polling_timeout=2, handle_signals=False, close_bot_session=False)
    )
    # stop_polling() refuses to run before polling started; getMe is its first call
    await emu.wait_for(lambda: emu.calls_to("getMe") or task.done(), what="polling to start")
    try:
        yield
    finally:
        if not task.done():
            await dp.stop_polling()
        await task


async def raw_call(emu: BotAPIEmulator, method: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """A call that bypasses aiogram: json=..., data=... (form/multipart)."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emu.base_url}/bot{TOKEN}/{method}", **kwargs) as resp,
    ):
        return resp.status, await resp.json()


# --------------------------------------------------------------------------- validation


async def test_normal_aiogram_usage_is_valid(emu: BotAPIEmulator, bot: Bot, alice: SimUser) -> None:
    await alice.send("/start")
    me = await bot.get_me()
    assert me.username == emu.bot_username
    kb = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="Voir", callback_data="v:1")],
            [InlineKeyboardButton(text="Site", url="https://example.org")],
        ]
    )
    first = await bot.send_message(ALICE, "<b>Bonjour</b> &amp; bienvenue", reply_markup=kb)
    assert first.text == "Bonjour & bienvenue"
    assert first.reply_markup is not None
    assert first.reply_markup.model_dump(exclude_none=True) == kb.model_dump(exclude_none=True)
    await bot.send_message(
        ALICE,
        "Choisissez",
        reply_markup=ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text="FR"), KeyboardButton(text="NL")]],
            resize_keyboard=True,
        ),
        reply_parameters=ReplyParameters(message_id=first.message_id),
    )
    await bot.send_message(ALICE, "ok", reply_markup=ReplyKeyboardRemove())
    await bot.send_message(ALICE, "Votre idée ?", reply_markup=ForceReply())
    await bot.send_chat_action(ALICE, "typing")
    await bot.send_document(ALICE, BufferedInputFile(b"a;b\n1;2\n", "export.csv"))
    photo = await bot.send_photo(ALICE, BufferedInputFile(png(), "c.png"), caption="<i>Graphe</i>")
    await bot.edit_message_caption(chat_id=ALICE, message_id=photo.message_id, caption="v2")
    await bot.edit_message_text("Bonjour !", chat_id=ALICE, message_id=first.message_id)
    await bot.edit_message_reply_markup(chat_id=ALICE, message_id=first.message_id, reply_markup=kb)
    await bot.copy_message(ALICE, ALICE, first.message_id)
    await bot.forward_message(ALICE, ALICE, first.message_id)
    await bot.set_my_commands(
        [BotCommand(command="start", description="Démarrer")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="fr",
    )
    await bot.set_chat_menu_button(chat_id=ALICE, menu_button=MenuButtonCommands())
    await bot.get_chat(ALICE)
    await bot.delete_message(ALICE, first.message_id)
    assert emu.violations == []


async def test_a_method_the_emulator_does_not_model_is_a_violation(
    emu: BotAPIEmulator, bot: Bot, alice: SimUser
) -> None:
    # Valid for the Bot API, but answering True (or a made-up message) would let a test pass
    # on behaviour nobody checked.
    with pytest.raises(TelegramBadRequest, match="not modelled"):
        await bot.set_my_description("Une consultation")
    with pytest.raises(TelegramBadRequest, match="not modelled"):
        await bot.send_location(ALICE, latitude=50.85, longitude=4.35)
    assert [(v.method, v.param) for v in emu.violations] == [
        ("setMyDescription", ""),
        ("sendLocation", ""),
    ]
    assert emu.bot_messages(ALICE) == []
    with pytest.raises(AssertionError, match="2 Bot API violations"):
        emu.assert_no_violations()


async def test_a_deprecated_parameter_is_a_violation(emu: BotAPIEmulator, alice: SimUser) -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url))
    # aiogram sends link_preview_is_disabled as disable_web_page_preview, gone since Bot API 7.0
    old_style = Bot(
        TOKEN, session=session, default=DefaultBotProperties(link_preview_is_disabled=True)
    )
    try:
        sent = await old_style.send_message(ALICE, "Bonjour")
    finally:
        await session.close()
    status, _ = await raw_call(
        emu,
        "sendMessage",
        json={"chat_id": ALICE, "text": "Re", "reply_to_message_id": sent.message_id},
    )
    assert status == 200  # Telegram still accepts them: the call works, the test fails
    assert [(v.method, v.param) for v in emu.violations] == [
        ("sendMessage", "disable_web_page_preview"),
        ("sendMessage", "reply_to_message_id"),
    ]
    assert all("deprecated" in v.message for v in emu.violations)


def test_what_the_spec_describes_as_deprecated_is_a_violation() -> None:
    # api.json has no marker for it: the deprecation is read from the descriptions at load.
    def field(name: str, types: list[str], description: str) -> dict[str, Any]:
        return {"name": name, "types": types, "required": False, "description": description}

    spec = BotApiSpec(
        {
            "version": "test",
            "methods": {
                "sendThing": {
                    "name": "sendThing",
                    "description": ["Sends a thing."],
                    "returns": ["True"],
                    "fields": [
                        field("colour", ["String"], "Deprecated. Use palette instead."),
                        field("palette", ["Palette"], "The palette."),
                    ],
                },
                "sendOldThing": {
                    "name": "sendOldThing",
                    "description": ["This method is deprecated, use sendThing."],
                    "returns": ["True"],
                    "fields": [],
                },
            },
            "types": {
                "Palette": {
                    "name": "Palette",
                    "description": ["A palette."],
                    "fields": [
                        field("main", ["String"], "The main colour."),
                        field("shade", ["String"], "Optional. This field is deprecated."),
                    ],
                }
            },
        }
    )
    assert spec.deprecated == {
        ("sendThing", "colour"): "Deprecated. Use palette instead.",
        ("Palette", "shade"): "Optional. This field is deprecated.",
        ("sendOldThing", ""): "This method is deprecated, use sendThing.",
    }
    check = spec.validate_call(
        "sendThing", {"colour": "red", "palette": {"main": "blue", "shade": "dark"}}
    )
    assert check.errors == []
    assert [d.param for d in check.deprecated] == ["colour", "palette.shade"]
    assert not spec.validate_call("sendThing", {"palette": '{"main": "blue"}'}).deprecated
    assert [d.param for d in spec.validate_call("sendOldThing", {}).deprecated] == [""]


async def test_responses_conform_to_the_spec(emu: BotAPIEmulator, bot: Bot, alice: SimUser) -> None:
    emu.add_group(GROUP, "Modération", admins=[ALICE], members=[BOB], owner=BOB)
    await bot.send_message(ALICE, "x", reply_markup=keyboard([("a", "a")]))
    await bot.send_photo(ALICE, BufferedInputFile(png(), "p.png"))
    await bot.get_chat(GROUP)
    await bot.get_chat_member(GROUP, ALICE)
    await bot.get_chat_administrators(GROUP)
    await alice.send_photo()
    await alice.send_sticker()
    alice.block_bot()
    checked = {
        "getMe": "User",
        "sendMessage": "Message",
        "sendPhoto": "Message",
        "getChat": "ChatFullInfo",
        "getChatMember": "ChatMember",
        "getChatAdministrators": "Array of ChatMember",
    }
    for call in emu.calls:
        if call.method in checked:
            errors = emu.spec.validate_object(checked[call.method], call.response["result"])
            # the one field aiogram 3.31 requires from a Bot API newer than api.json
            assert [e for e in errors if not e.param.endswith("can_send_welcome_messages")] == []
    for update in emu.updates:
        assert emu.spec.validate_object("Update", update) == []
    admins = await bot.get_chat_administrators(GROUP)
    assert [a.status for a in admins] == ["creator", "administrator", "administrator"]


async def test_unknown_missing_and_mistyped_parameters(
    emu: BotAPIEmulator, bot: Bot, alice: SimUser
) -> None:
    with pytest.raises(TelegramBadRequest, match='unknown parameter "bogus"'):
        await bot(SendMessage(chat_id=ALICE, text="hi", bogus="1"))  # type: ignore[call-arg]

    status, body = await raw_call(emu, "sendMessage", json={"text": "hi"})
    assert (status, body["description"]) == (400, "Bad Request: chat_id is empty")

    status, body = await raw_call(
        emu,
        "sendMessage",
        data={"chat_id": str(ALICE), "text": "x", "disable_notification": "maybe"},
    )
    assert status == 400 and "Boolean" in body["description"]

    status, body = await raw_call(
        emu, "editMessageText", data={"chat_id": ALICE, "message_id": "abc", "text": "x"}
    )
    assert status == 400 and "Integer" in body["description"]

    status, body = await raw_call(
        emu, "sendMessage", data={"chat_id": ALICE, "text": "x", "reply_markup": "{not json"}
    )
    assert status == 400 and "can't parse reply_markup" in body["description"]

    markup = {"inline_keyboard": [[{"callback_data": "x"}]]}  # no text
    status, body = await raw_call(
        emu, "sendMessage", json={"chat_id": ALICE, "text": "x", "reply_markup": markup}
    )
    assert status == 400 and "inline_keyboard[0][0].text" in body["description"]

    status, body = await raw_call(emu, "sendMesage", json={"chat_id": ALICE, "text": "x"})
    assert status == 404

    # form values are coerced where the spec says Integer/Boolean: no violation
    status, body = await raw_call(
        emu,
        "sendMessage",
        data={"chat_id": str(ALICE), "text": "x", "disable_notification": "true"},
    )
    assert status == 200 and body["result"]["text"] == "x"

    params = {(v.method, v.param) for v in emu.violations}
    assert {
        ("sendMessage", "bogus"),
        ("sendMessage", "chat_id"),
        ("sendMessage", "disable_notification"),
        ("editMessageText", "message_id"),
        ("sendMessage", "reply_markup"),
        ("sendMessage", "reply_markup.inline_keyboard[0][0].text"),
        ("sendMesage", ""),
    } <= params


async def test_callback_data_and_button_rules(
    emu: BotAPIEmulator, bot: Bot, alice: SimUser
) -> None:
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(ALICE, "x", reply_markup=keyboard([("a", "x" * 65)]))
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(ALICE, "x", reply_markup=keyboard([("a", "é" * 33)]))  # 66 bytes
    await bot.send_message(ALICE, "x", reply_markup=keyboard([("a", "é" * 32)]))  # 64 bytes
    with pytest.raises(TelegramBadRequest, match="unallowed"):
        await bot.send_message(
            ALICE,
            "x",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="no action")]]
            ),
        )
    with pytest.raises(TelegramBadRequest):
        await bot.send_message(ALICE, "x", reply_markup=keyboard([(" ", "a")]))
    assert [v.param for v in emu.violations] == [
        "reply_markup.inline_keyboard[0][0].callback_data",
        "reply_markup.inline_keyboard[0][0].callback_data",
        "reply_markup.inline_keyboard[0][0]",
        "reply_markup.inline_keyboard[0][0].text",
    ]


async def test_text_limits_and_html(emu: BotAPIEmulator, bot: Bot, alice: SimUser) -> None:
    await bot.send_message(ALICE, "x" * 4096)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(ALICE, "x" * 4097)
    await bot.send_message(ALICE, "<b>" + "x" * 4096 + "</b>")  # tags are not counted
    await bot.send_message(ALICE, "&lt;" * 4096)  # one character each
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(ALICE, "<b> </b>")
    for bad in ("<b>unclosed", "a < b", "<foo>x</foo>", "<b>x</i>", "<span>x</span>"):
        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await bot.send_message(ALICE, bad)
    await bot.send_message(ALICE, "a < b", parse_mode=None)  # plain text is fine
    with pytest.raises(TelegramBadRequest, match="unsupported parse_mode"):
        await bot.send_message(ALICE, "x", parse_mode="HTM")
    photo = BufferedInputFile(png(), "p.png")
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(ALICE, photo, caption="c" * 1025)
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Start", description="x")])
    with pytest.raises(TelegramBadRequest, match="1-256"):
        await bot.set_my_commands([BotCommand(command="start", description="")])
    with pytest.raises(TelegramBadRequest, match="0-200"):
        await bot.answer_callback_query("1", text="t" * 201)
    scope = BotCommandScopeChat(chat_id=ALICE)
    await bot.set_my_commands(
        [BotCommand(command="my_data", description="Mes données")], scope=scope, language_code="fr"
    )
    assert [c.command for c in await bot.get_my_commands(scope=scope, language_code="fr")] == [
        "my_data"
    ]
    assert await bot.get_my_commands() == []
    assert len(emu.violations) == 12


async def test_lengths_are_counted_in_utf16_code_units(
    emu: BotAPIEmulator, bot: Bot, alice: SimUser
) -> None:
    # Telegram counts UTF-16 code units: an emoji outside the BMP is one Python character but
    # two units, so these pass when counted in characters and are refused by Telegram.
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(ALICE, "👍" * 2049)  # 2049 characters, 4098 units
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(ALICE, "<b>Résultats</b> " + "📊" * 2045)  # 2055, 4100 units
    photo = BufferedInputFile(png(), "p.png")
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(ALICE, photo, caption="🎉" * 513)  # 1026 units
    album = [InputMediaPhoto(media=photo, caption="🎉" * 513), InputMediaPhoto(media=photo)]
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_media_group(ALICE, album)
    with pytest.raises(TelegramBadRequest, match="0-200"):
        await bot.answer_callback_query("1", text="🙏" * 101)  # 202 units
    with pytest.raises(TelegramBadRequest, match="1-256"):
        await bot.set_my_commands([BotCommand(command="vote", description="🗳️" * 86)])  # 258
    assert len(emu.violations) == 6
    # The converse: at the limit in units is accepted, whatever it is in bytes or characters.
    sent = await bot.send_message(ALICE, "👍" * 2048)  # 4096 units, 16384 bytes
    assert sent.text == "👍" * 2048
    await bot.send_message(ALICE, "é" * 4096)  # 4096 units (one each), 8192 bytes
    await bot.send_photo(ALICE, photo, caption="🎉" * 512)
    await bot.set_my_commands([BotCommand(command="vote", description="🗳️" * 85)])  # 255 units
    assert len(emu.violations) == 6


def test_html_parser_entities() -> None:
    text, entities = parse_html(
        '👍 <b>gras <i>it</i></b> <a href="https://x.org?a=1&amp;b=2">l</a>'
    )
    assert text == "👍 gras it l"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 7},  # the emoji is 2 UTF-16 units
        {"type": "italic", "offset": 8, "length": 2},
        {"type": "text_link", "offset": 11, "length": 1, "url": "https://x.org?a=1&b=2"},
    ]
    assert parse_html("5 &gt; 3 &amp; R&D &#233;")[0] == "5 > 3 & R&D é"
    with pytest.raises(HtmlParseError, match='Unsupported start tag "br"'):
        parse_html("a<br>b")


def test_validation_compiles_the_spec_once(
    emu: BotAPIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What keeps a call cheap (a few dict lookups per parameter), checked without a stopwatch:
    # methods and types are compiled on their first use only.
    compiled: list[str] = []

    def counting(module: Any) -> None:
        real = module._compile_fields

        def compile_fields(spec: BotApiSpec, owner: str, fields: list[dict[str, Any]]) -> Any:
            compiled.append(owner)
            return real(spec, owner, fields)

        monkeypatch.setattr(module, "_compile_fields", compile_fields)

    counting(emulator_spec)
    counting(emulator_validation)
    params = {
        "chat_id": "1001",
        "text": "<b>Question 1</b>: quelle priorité ?",
        "parse_mode": "HTML",
        "reply_markup": '{"inline_keyboard": [[{"text": "A", "callback_data": "q:1:a"}, '
        '{"text": "B", "callback_data": "q:1:b"}], [{"text": "Suivant", "callback_data": "n"}]]}',
    }
    # a spec of its own, not the cached one other tests have compiled already
    spec = emulator_spec._load_cached.__wrapped__(str(emulator_spec.DEFAULT_SPEC_PATH))
    assert not spec.validate_call("sendMessage", params).errors
    first = sorted(set(compiled))
    assert "sendMessage" in first and "InlineKeyboardButton" in first
    for _ in range(100):
        assert not spec.validate_call("sendMessage", params).errors
    assert sorted(set(compiled)) == first and len(compiled) == len(first)


# --------------------------------------------------------------------------- updates


async def test_long_polling_semantics(emu: BotAPIEmulator, alice: SimUser) -> None:
    status, body = await raw_call(emu, "getUpdates", json={"timeout": 0})
    assert (status, body["result"]) == (200, [])

    # a pending long poll returns as soon as an update is queued
    poll = asyncio.create_task(raw_call(emu, "getUpdates", json={"timeout": 5}))
    await emu.wait_for(lambda: emu._poll_waiter is not None, what="the long poll to wait")
    waiter = emu._poll_waiter
    assert waiter is not None
    await alice.send("bonjour")
    # woken by the update itself: its timeout would have left the waiter pending
    assert waiter.done() and waiter.result() is True
    status, body = await poll
    [update] = body["result"]
    assert update["message"]["text"] == "bonjour"

    # not confirmed yet: delivered again; offset confirms it
    await alice.send("deux")
    _, body = await raw_call(emu, "getUpdates", json={"limit": 1})
    assert [u["update_id"] for u in body["result"]] == [update["update_id"]]
    _, body = await raw_call(emu, "getUpdates", json={"offset": update["update_id"] + 1})
    assert [u["message"]["text"] for u in body["result"]] == ["deux"]

    # allowed_updates filters what is queued afterwards
    last = body["result"][-1]["update_id"]
    _, body = await raw_call(
        emu, "getUpdates", json={"offset": last + 1, "allowed_updates": ["message"]}
    )
    alice.block_bot()
    await alice.send("trois")
    _, body = await raw_call(emu, "getUpdates", json={"offset": last + 1})
    assert [next(k for k in u if k != "update_id") for u in body["result"]] == ["message"]
    assert "my_chat_member" in emu.dropped_updates[-1]

    # a second poller terminates the first one, as Telegram does
    first = asyncio.create_task(raw_call(emu, "getUpdates", json={"offset": 10**6, "timeout": 5}))
    await emu.wait_for(lambda: emu._poll_waiter is not None, what="the first poll to wait")
    second = asyncio.create_task(raw_call(emu, "getUpdates", json={"timeout": 0}))
    status, body = await first
    assert status == 409 and "terminated by other getUpdates" in body["description"]
    await second


async def test_dispatcher_round_trip_and_click(
    emu: BotAPIEmulator, bot: Bot, alice: SimUser
) -> None:
    dp = Dispatcher()

    @dp.message(CommandStart(deep_link=True))
    async def start(message: Message, command: CommandObject) -> None:
        await message.answer(
            f"Bienvenue, invitation <code>{command.args}</code>",
            reply_markup=keyboard([("✅ Oui", "yes"), ("Non", "no")], [("Plus tard", "later")]),
        )

    @dp.callback_query()
    async def clicked(query: CallbackQuery) -> None:
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"Réponse : {query.data}")
        await query.answer("Merci !", show_alert=query.data == "no")

    async with polling(emu, dp, bot):
        sent = await alice.send("/start abc123")
        assert sent["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
        welcome = await alice.wait_for_message("invitation abc123")
        assert welcome.buttons == [["✅ Oui", "Non"], ["Plus tard"]]

        answer = await alice.click("Oui")  # unique partial match
        assert (answer.text, answer.show_alert) == ("Merci !", False)
        edited = await alice.wait_for_message("Réponse : yes")
        assert edited is welcome and welcome.edit_count == 1 and welcome.buttons == []

        with pytest.raises(AssertionError, match=r"available buttons"):
            await alice.click("Oui")  # the keyboard is gone after the edit
    assert emu.callback_answers[0].button_text == "✅ Oui"
    rendered = emu.render_transcript(ALICE)
    assert "BOT #2 (edited x1): Réponse : yes" in rendered
    assert "USER clicked [✅ Oui] on #2 -> 'Merci !'" in rendered
    assert emu.violations == []


async def test_click_errors_name_the_buttons(emu: BotAPIEmulator, bot: Bot, alice: SimUser) -> None:
    await bot.send_message(
        ALICE, "Q", reply_markup=keyboard([("Option A", "a"), ("Option B", "b")])
    )
    with pytest.raises(AssertionError, match=r"ambiguous.*\[Option A\], \[Option B\]"):
        await alice.click("Option")
    with pytest.raises(
        AssertionError, match=r"(?s)no inline button 'C'.*\[Option A\] \[Option B\]"
    ):
        await alice.click("C")
    with pytest.raises(AssertionError, match="did not answer the click on \\[Option A\\]"):
        await alice.click("Option A", timeout=0.2)  # nobody polls


async def test_wait_for_reports_recent_calls(emu: BotAPIEmulator, bot: Bot, alice: SimUser) -> None:
    await bot.send_message(ALICE, "hello")
    with pytest.raises(AssertionError, match=r"(?s)waiting for nothing.*sendMessage\(chat_id"):
        await emu.wait_for(lambda: False, timeout=0.1, what="nothing")
    with pytest.raises(AssertionError, match=r"(?s)containing 'bye'.*BOT #1: hello"):
        await alice.wait_for_message("bye", timeout=0.1)


# --------------------------------------------------------------------------- faults


async def test_injected_429_raises_retry_after(
    emu: BotAPIEmulator, bot: Bot, alice: SimUser
) -> None:
    fault = emu.inject_fault("sendMessage", chat_id=ALICE, code=429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(ALICE, "one")
    assert caught.value.retry_after == 3
    await bot.send_message(ALICE, "two")
    assert fault.hits == 1 and fault.remaining == 0
    assert [e.text for e in emu.delivered(ALICE)] == ["two"]
    assert emu.delivery_counts() == {ALICE: 1}
    assert len(emu.injected_failures) == 1

    emu.inject_fault("sendPhoto", code=500)
    with pytest.raises(Exception, match="Internal Server Error"):
        await bot.send_photo(ALICE, BufferedInputFile(png(), "p.png"))


async def test_an_injected_429_holds_its_chat_only(
    emu: BotAPIEmulator, bot: Bot, alice: SimUser
) -> None:
    """As Telegram: a flood 429 for a chat concerns that chat. With the limits enforced, a
    send there before its retry_after has passed is refused and counted against the bot;
    other chats are not held."""
    emu.add_user(BOB, "Bob")
    emu.enforce_limits(global_per_second=30, per_chat_per_second=1)
    emu.inject_fault("sendMessage", chat_id=ALICE, code=429, retry_after=2)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(ALICE, "one")
    await bot.send_message(BOB, "other chat")
    assert emu.limit_violations == []
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(ALICE, "too early")
    assert caught.value.retry_after == 2
    assert [v.kind for v in emu.limit_violations] == ["retry_after"]
    assert emu.delivery_counts() == {BOB: 1}


async def test_held_calls_wait_for_the_release(
    emu: BotAPIEmulator, bot: Bot, alice: SimUser
) -> None:
    bob = emu.add_user(BOB, "Bob")
    gate = emu.hold(chat_id=ALICE)
    held = asyncio.create_task(bot.send_message(ALICE, "lent"))
    await emu.wait_for(lambda: gate.held == 1, what="the call to be held")
    await bot.send_message(BOB, "rapide")  # another chat is not held
    assert not held.done() and emu.bot_messages(ALICE) == []
    assert [e.text for e in emu.bot_messages(bob)] == ["rapide"]
    gate.release()
    assert (await held).text == "lent"
    await bot.send_message(ALICE, "ensuite")  # a released gate holds nothing
    assert gate.held == 1


async def test_blocked_user_gets_403(emu: BotAPIEmulator, bot: Bot, alice: SimUser) -> None:
    await bot.send_message(ALICE, "avant")
    alice.block_bot()
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(ALICE, "après")
    update = emu.updates[-1]["my_chat_member"]
    assert (update["old_chat_member"]["status"], update["new_chat_member"]["status"]) == (
        "member",
        "kicked",
    )
    alice.unblock_bot()
    await bot.send_message(ALICE, "de retour")

    stranger = emu.add_user(BOB, "Bob", started=False)
    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await bot.send_message(BOB, "hello")
    await stranger.send("/start")
    await bot.send_message(BOB, "hello")

    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(424242, "who?")


async def test_rate_limits(emu: BotAPIEmulator, bot: Bot, alice: SimUser) -> None:
    for uid in range(2000, 2005):
        emu.add_user(uid, f"U{uid}")
    emu.enforce_limits(global_per_second=3, per_chat_per_second=1)
    await bot.send_message(ALICE, "1")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(ALICE, "2")
    assert caught.value.retry_after == 1
    await bot.send_message(2000, "x")
    await bot.send_message(2001, "x")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(2002, "x")  # 4th send within one second
    assert [v.kind for v in emu.limit_violations] == ["chat", "global"]
    assert emu.delivery_counts() == {ALICE: 1, 2000: 1, 2001: 1}


async def test_albums_count_photo_by_photo(emu: BotAPIEmulator, bot: Bot, alice: SimUser) -> None:
    """Each photo of an album counts, overall and for the chat: one album passes on a rested
    chat, which then waits it out; a paid broadcast goes past the overall limit, billed."""
    for uid in range(2000, 2012):
        emu.add_user(uid, f"U{uid}")
    first = await bot.send_photo(ALICE, BufferedInputFile(png(), "c.png"))
    assert first.photo is not None
    photo = first.photo[-1].file_id
    emu.enforce_limits(global_per_second=10, per_chat_per_second=1)
    album = [InputMediaPhoto(media=photo) for _ in range(7)]
    await bot.send_media_group(ALICE, album)  # a rested chat: 7 at once pass
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(ALICE, "right after the album")
    assert caught.value.retry_after == 7  # the chat's debt: 7 photos at 1/s
    for uid in (2000, 2001, 2002):  # 7 + 3 = the 10 of this second
        await bot.send_message(uid, "x")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(2003, "x")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_media_group(2004, album[:2])
    assert [v.kind for v in emu.limit_violations] == ["chat", "global", "global"]
    # Paid: up to 1000/s overall; what goes beyond the free 10 is billed, message by message.
    await bot.send_media_group(2005, album, allow_paid_broadcast=True)
    await bot.send_message(2006, "x", allow_paid_broadcast=True)
    assert emu.paid_messages == 8
    assert len(emu.limit_violations) == 3
    assert emu.delivery_counts()[ALICE] == 2  # the photo, then the album (one delivery)


# --------------------------------------------------------------------------- media, edits


async def test_photo_upload_then_reuse_by_file_id(
    emu: BotAPIEmulator, bot: Bot, alice: SimUser
) -> None:
    first = await bot.send_photo(ALICE, BufferedInputFile(png(400, 300), "chart.png"))
    assert first.photo is not None and first.photo[-1].width == 400
    again = await bot.send_photo(ALICE, first.photo[-1].file_id, caption="Résultats")
    other = await bot.send_photo(ALICE, BufferedInputFile(png(400, 300), "chart.png"))
    assert again.photo == first.photo
    assert other.photo is not None and other.photo[-1].file_id != first.photo[-1].file_id
    assert [m.source for m in emu.media_sends] == ["upload", "file_id", "upload"]
    entries = emu.bot_messages(ALICE)
    assert [e.text for e in entries] == ["[photo]", "Résultats", "[photo]"]
    assert entries[1].media is not None and entries[1].media.source == "file_id"

    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(ALICE, BufferedInputFile(b"not an image", "x.png"))
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(ALICE, "AgACunknown")

    album = await bot.send_media_group(
        ALICE,
        [
            InputMediaPhoto(media=first.photo[-1].file_id, caption="<b>1</b>"),
            InputMediaPhoto(media=BufferedInputFile(png(), "2.png")),
        ],
    )
    assert len(album) == 2 and album[0].caption == "1"
    assert album[0].media_group_id == album[1].media_group_id
    assert [m.source for m in emu.media_sends[-2:]] == ["file_id", "upload"]
    # An album holds 2 to 10 items, and its uploads must be images like sendPhoto's.
    with pytest.raises(TelegramBadRequest, match="2 to 10"):
        await bot.send_media_group(ALICE, [InputMediaPhoto(media=first.photo[-1].file_id)])
    with pytest.raises(TelegramBadRequest, match="2 to 10"):
        await bot.send_media_group(
            ALICE, [InputMediaPhoto(media=first.photo[-1].file_id) for _ in range(11)]
        )
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_media_group(
            ALICE,
            [
                InputMediaPhoto(media=first.photo[-1].file_id),
                InputMediaPhoto(media=BufferedInputFile(b"not an image", "x.png")),
            ],
        )

    # a raw multipart upload under the parameter's own name works too
    form = aiohttp.FormData()
    form.add_field("chat_id", str(ALICE))
    form.add_field("photo", png(), filename="direct.png", content_type="image/png")
    status, body = await raw_call(emu, "sendPhoto", data=form)
    assert status == 200 and body["result"]["photo"]


async def test_edits_update_transcript_and_not_modified(
    emu: BotAPIEmulator, bot: Bot, alice: SimUser
) -> None:
    kb = keyboard([("A", "a")])
    msg = await bot.send_message(ALICE, "Question", reply_markup=kb)
    await bot.edit_message_text(
        "Question <b>1</b>", chat_id=ALICE, message_id=msg.message_id, reply_markup=kb
    )
    entry = emu.last_bot_message(ALICE)
    assert entry is not None
    assert (entry.text, entry.edited, entry.edit_count, entry.buttons) == (
        "Question 1",
        True,
        1,
        [["A"]],
    )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Question <b>1</b>", chat_id=ALICE, message_id=msg.message_id, reply_markup=kb
        )
    # same text, other formatting: modified
    await bot.edit_message_text(
        "Question <i>1</i>", chat_id=ALICE, message_id=msg.message_id, reply_markup=kb
    )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(
            chat_id=ALICE, message_id=msg.message_id, reply_markup=kb
        )
    await bot.edit_message_reply_markup(chat_id=ALICE, message_id=msg.message_id)
    assert entry.buttons == [] and entry.edit_count == 3
    assert "BOT #1 (edited x3): Question 1" in emu.render_transcript(ALICE)

    await bot.delete_message(ALICE, msg.message_id)
    assert entry.deleted and emu.last_bot_message(ALICE) is None
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(ALICE, msg.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=ALICE, message_id=msg.message_id)
    user_msg = await alice.send("mon texte")
    with pytest.raises(TelegramBadRequest, match="can't be edited"):
        await bot.edit_message_text("x", chat_id=ALICE, message_id=user_msg["message_id"])


# --------------------------------------------------------------------------- groups, webhook


async def test_group_moderation_click(emu: BotAPIEmulator, bot: Bot, alice: SimUser) -> None:
    bob = emu.add_user(BOB, "Bob")
    emu.add_group(GROUP, "Modération", admins=[ALICE, BOB])
    admins = await bot.get_chat_administrators(GROUP)
    assert {a.user.id for a in admins} == {ALICE, BOB, emu.bot_id}
    member = await bot.get_chat_member(GROUP, BOB)
    assert member.status == "administrator"

    dp = Dispatcher()

    @dp.callback_query()
    async def decide(query: CallbackQuery) -> None:
        await query.answer(f"décidé par {query.from_user.first_name}")

    mark = emu.seq
    await bot.send_message(GROUP, "Nouvelle idée", reply_markup=keyboard([("Approuver", "ok")]))
    card = await emu.wait_for_bot_message(GROUP, "Nouvelle idée", since=mark)
    async with polling(emu, dp, bot):
        answer = await bob.click("Approuver", chat_id=GROUP)
    assert answer.text == "décidé par Bob"
    assert emu.callback_answers[0].message_id == card.message_id
    await alice.send_in_group(GROUP, "/stats@consultbot_test_bot")
    assert emu.transcript(GROUP)[-1].message["entities"][0]["length"] == len(
        "/stats@consultbot_test_bot"
    )


async def test_webhook_delivery_and_reply(emu: BotAPIEmulator, bot: Bot, alice: SimUser) -> None:
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler

    dp = Dispatcher()
    seen: list[str] = []

    @dp.message()
    async def pong(message: Message) -> Any:
        seen.append(message.text or "")
        return message.answer("<b>pong</b>")  # returned, so sent in the webhook reply

    app = web.Application()
    SimpleRequestHandler(
        dispatcher=dp, bot=bot, handle_in_background=False, secret_token="s3cret"
    ).register(app, path="/webhook")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        await bot.set_webhook(f"http://127.0.0.1:{port}/webhook", secret_token="s3cret")
        with pytest.raises(Exception, match="webhook is active"):
            await bot.get_updates()
        await alice.send("ping")
        reply = await alice.wait_for_message("pong")
        assert seen == ["ping"] and reply.entities == [{"type": "bold", "offset": 0, "length": 4}]
        info = await bot.get_webhook_info()
        assert info.url.endswith("/webhook") and info.pending_update_count == 0
        await bot.delete_webhook()
        assert await bot.get_updates(timeout=0) == []
    finally:
        await runner.cleanup()
    with pytest.raises(TelegramBadRequest, match="HTTPS URL must be provided"):
        await bot.set_webhook("http://example.org/webhook")
    assert emu.violations == []
