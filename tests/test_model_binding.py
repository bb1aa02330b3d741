"""aiogram's models bound to the bot in one step (bot/telegram/model_binding.py) end up as
pydantic's own set-up leaves them: `_bot` is the validating bot, or None."""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.context_controller import BotContextController
from aiogram.methods import EditMessageText
from aiogram.types import InlineKeyboardButton, TelegramObject, Update
from pydantic import PrivateAttr

from bot.telegram.model_binding import _bind_bot, bind_bot_cheaply
from tests.support import TAP_UPDATE


def _models(value: Any) -> list[BotContextController]:
    """Every aiogram model in `value`, nested ones included."""
    found: list[BotContextController] = []
    if isinstance(value, BotContextController):
        found.append(value)
        for name in type(value).model_fields:
            found += _models(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            found += _models(item)
    return found


def test_every_aiogram_model_gets_the_one_step_binding() -> None:
    bound = bind_bot_cheaply()
    assert bound > 400  # aiogram 3.31: every type and method
    assert bind_bot_cheaply() == bound  # idempotent
    for model in (Update, InlineKeyboardButton, EditMessageText, TelegramObject):
        assert model.model_post_init is _bind_bot


def test_a_validated_update_is_bound_to_its_bot_at_every_level() -> None:
    bind_bot_cheaply()
    bot = Bot("42:TEST")
    update = Update.model_validate(TAP_UPDATE, context={"bot": bot})
    models = _models(update)
    assert len(models) >= 7  # the update, query, user, message, chat, keyboard, button
    assert all(m.__pydantic_private__ == {"_bot": bot} for m in models)
    query = update.callback_query
    assert query is not None and query.bot is bot
    # Without a bot in the context, and for a model made in code: no bot, as pydantic does.
    assert all(m.bot is None for m in _models(Update.model_validate(TAP_UPDATE)))
    button = InlineKeyboardButton(text="Oui", callback_data="yes")
    assert button.__pydantic_private__ == {"_bot": None}
    assert button.as_(bot).bot is bot
    assert button.model_copy().bot is bot


def test_a_model_with_private_attributes_of_its_own_keeps_them() -> None:
    """A subclass made after the binding, with its own private attribute or post-init: both
    its attributes and the bot are set, and the binding leaves it alone."""
    bind_bot_cheaply()

    class Tagged(TelegramObject):
        name: str
        _tag: str = PrivateAttr(default="fresh")

    seen: list[str] = []

    class Counted(TelegramObject):
        name: str

        def model_post_init(self, context: Any, /) -> None:
            super().model_post_init(context)
            seen.append(self.name)

    bind_bot_cheaply()
    assert Tagged.model_post_init is not _bind_bot
    assert Counted.model_post_init is not _bind_bot
    bot = Bot("42:TEST")
    tagged = Tagged.model_validate({"name": "x"}, context={"bot": bot})
    assert tagged.__pydantic_private__ == {"_tag": "fresh", "_bot": bot}
    counted = Counted.model_validate({"name": "x"}, context={"bot": bot})
    assert counted.bot is bot and seen == ["x"]
