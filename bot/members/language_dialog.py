"""Choosing the interface language (also asked at /start when Telegram's is not offered)."""

from __future__ import annotations

from typing import Any

from aiogram.types import CallbackQuery
from aiogram_dialog import Dialog, DialogManager, StartMode, Window
from aiogram_dialog.widgets.kbd import Column
from aiogram_dialog.widgets.text import Const

from bot.context import AppContext
from bot.i18n import LANGUAGE_NAMES
from bot.members.service import MemberService
from bot.ui.presenters import welcome_text
from bot.ui.states import Ideas, LanguagePick, MainMenu
from bot.ui.widgets import Choices


async def languages_getter(app: AppContext, lang: str, **_: Any) -> dict[str, Any]:
    return {
        "languages": [
            (code, ("✓ " if code == lang else "") + LANGUAGE_NAMES.get(code, code))
            for code in app.languages
        ]
    }


async def on_language(callback: CallbackQuery, _: Any, manager: DialogManager, code: str) -> None:
    data = manager.middleware_data
    app: AppContext = data["app"]
    if code not in app.languages or data.get("member") is None:
        await callback.answer()
        return
    await MemberService(data["session"], app).set_language(data["member"], code)
    with app.translator.use(code):
        await callback.answer(app.translator.gettext("Langue enregistrée."))
        if callback.bot is not None:
            await MemberService.set_chat_commands(callback.bot, app, callback.from_user.id, code)
        start_data = manager.start_data if isinstance(manager.start_data, dict) else {}
        if start_data.get("welcome") and callback.message is not None:
            await callback.message.answer(welcome_text(app, code))
        await manager.start(MainMenu.menu, mode=StartMode.RESET_STACK)
        if start_data.get("idea"):
            await manager.start(Ideas.idea, data={"idea": start_data["idea"]})


def language_dialog() -> Dialog:
    """A fresh dialog: a router can belong to one dispatcher only."""
    return Dialog(
        Window(
            # Shown in every language at once: the member may not read the current one.
            Const("🌐 Choisissez votre langue · Kies uw taal · Choose your language"),
            Column(Choices("l", "languages", on_language)),
            state=LanguagePick.choose,
            getter=languages_getter,
        ),
    )
