"""Choosing the interface language (also asked at /start when Telegram's is not offered)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiogram.types import CallbackQuery
from aiogram_dialog import Dialog, DialogManager, StartMode, Window
from aiogram_dialog.widgets.kbd import Column
from aiogram_dialog.widgets.text import Const

from bot.context import AppContext
from bot.i18n import LANGUAGE_NAMES
from bot.ideas.browse_state import IdeasStart
from bot.members.service import MemberService
from bot.ui.deps import app_of, member_of, services_of, translator_of
from bot.ui.dialog_data import StartRecord
from bot.ui.presenters import welcome_text
from bot.ui.states import Ideas, LanguagePick, MainMenu
from bot.ui.widgets import Choices


@dataclass(frozen=True)
class LanguageStart(StartRecord):
    """Start data: a newcomer's /start is welcomed once the language is chosen, and the idea
    of a shared link (if any) opens after the menu."""

    welcome: bool = False
    idea: int | None = None


async def languages_getter(app: AppContext, lang: str, **_: Any) -> dict[str, Any]:
    return {
        "languages": [
            (code, ("✓ " if code == lang else "") + LANGUAGE_NAMES.get(code, code))
            for code in app.languages
        ]
    }


async def on_language(callback: CallbackQuery, _: Any, manager: DialogManager, code: str) -> None:
    app, member = app_of(manager), member_of(manager)
    if code not in app.languages or member is None:
        await callback.answer()
        return
    await services_of(manager).members.set_language(member, code)
    translator = translator_of(manager)
    with translator.use(code):
        await callback.answer(translator.gettext("Langue enregistrée."))
        if callback.bot is not None:
            await MemberService.set_chat_commands(
                callback.bot, app, translator, callback.from_user.id, code
            )
        start = LanguageStart.load(manager.start_data)  # read before the stack is reset
        if start.welcome and callback.message is not None:
            await callback.message.answer(welcome_text(app, translator, code))
        await manager.start(MainMenu.menu, mode=StartMode.RESET_STACK)
        if start.idea:
            await manager.start(Ideas.idea, data=IdeasStart(start.idea).dump())


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
