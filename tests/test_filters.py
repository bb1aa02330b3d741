"""Filters awaited on the loop (bot/telegram/filters.py) decide as the magic filters did."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from aiogram.dispatcher.event.handler import FilterObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Chat, Message, PhotoSize, User
from aiogram_dialog.utils import intent_callback_data

from bot.telegram.filters import GroupMigrated, IsText, NotDialogTap, PrivateChat

NOW = datetime(2026, 12, 7, tzinfo=UTC)
USER = User(id=1, is_bot=False, first_name="Amélie")


def message(chat_type: str, **fields: object) -> Message:
    chat = Chat(id=1 if chat_type == "private" else -100, type=chat_type)
    return Message(message_id=1, date=NOW, chat=chat, from_user=USER, **fields)


def tap(on: Message | None) -> CallbackQuery:
    return CallbackQuery(id="q", from_user=USER, chat_instance="c", data="x", message=on)


async def test_private_chat_text_and_migration_decide_as_the_magic_filters_did() -> None:
    private = PrivateChat()
    assert await private(message("private", text="/start"))
    assert not await private(message("group", text="/start"))
    assert not await private(message("supergroup", text="/start"))
    assert await private(tap(message("private", text="q")))
    assert not await private(tap(message("supergroup", text="card")))
    assert not await private(tap(None))  # a tap on an inline message: no chat known

    assert await IsText()(message("private", text="5000"))
    photo = [PhotoSize(file_id="f", file_unique_id="u", width=1, height=1)]
    assert not await IsText()(message("private", photo=photo))

    migrated = GroupMigrated()
    assert await migrated(message("group", migrate_to_chat_id=-1001))
    assert await migrated(message("supergroup", migrate_from_chat_id=-5))
    assert not await migrated(message("group", text="hello"))
    assert not await migrated(message("private", text="hello"))


async def test_aiogram_awaits_them_on_the_loop_instead_of_a_worker_thread() -> None:
    seen: list[str] = []

    class Spy(PrivateChat):
        async def __call__(self, event: Message | CallbackQuery) -> bool:  # type: ignore[override]
            seen.append(threading.current_thread().name)
            return await super().__call__(event)

    assert FilterObject(Spy()).awaitable
    assert await FilterObject(Spy()).call(message("private", text="hi"))
    assert seen == [threading.main_thread().name]
    # a magic filter, by contrast, goes through asyncio.to_thread
    from aiogram import F

    magic = FilterObject(F.chat.func(lambda c: seen.append(threading.current_thread().name)))
    await magic.call(message("private", text="hi"))
    assert seen[-1] != threading.main_thread().name


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


async def test_a_dialogs_tap_is_told_from_every_other_button() -> None:
    """The command and button handlers' router skips a dialog's tap in one check (bot/app.py);
    every other button of the bot still reaches it."""
    import bot.app  # noqa: F401  (every router, so every button's CallbackData)

    not_dialog = NotDialogTap()

    def tap_with(data: str | None) -> CallbackQuery:
        return CallbackQuery(id="q", from_user=USER, chat_instance="c", data=data)

    assert not await not_dialog(tap_with(intent_callback_data("aB3x", "o:inclusion")))
    assert await not_dialog(tap_with(None))
    buttons = [c for c in _subclasses(CallbackData) if c.__module__.startswith("bot.")]
    assert len(buttons) >= 7
    for button in buttons:
        samples: dict[object, object] = {int: 7, "int": 7, bool: True, "bool": True}
        values = {
            name: samples.get(field.annotation, "7") for name, field in button.model_fields.items()
        }
        packed = button.model_construct(**values).pack()
        assert await not_dialog(tap_with(packed)), packed
