"""Errors: stale dialog buttons restart the menu; anything else is logged and apologised for."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiogram import F, Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent
from aiogram_dialog import DialogManager, ShowMode, StartMode
from aiogram_dialog.api.exceptions import OutdatedIntent, UnknownIntent, UnknownState

from bot.context import AppContext
from bot.ui.states import MainMenu

log = logging.getLogger(__name__)


class RecentMenus:
    """Members just sent a fresh menu: hammering an old button must not send one per tap."""

    def __init__(self, quiet: float = 10.0) -> None:
        self.quiet = quiet
        self.sent: dict[int, float] = {}

    def first(self, chat_id: int) -> bool:
        now = time.monotonic()
        if now - self.sent.get(chat_id, -self.quiet) < self.quiet:
            return False
        if len(self.sent) > 10_000:
            self.sent = {k: t for k, t in self.sent.items() if now - t < self.quiet}
        self.sent[chat_id] = now
        return True


async def stale_button(
    event: ErrorEvent, dialog_manager: DialogManager, menus: RecentMenus, **data: Any
) -> None:
    app: AppContext = data["app"]
    with app.translator.use(data.get("lang", app.consultation.source_language)):
        text = app.translator.gettext("Ce bouton n’est plus actif : voici le menu à jour.")
        query = event.update.callback_query
        if query is not None:
            await query.answer(text)
        chat = data.get("event_chat")
        if chat is not None and chat.type == "private" and menus.first(chat.id):
            # The update's own session closed with the failed handler: the menu gets a new one.
            async with app.sessionmaker() as session:
                dialog_manager.middleware_data["session"] = session
                await dialog_manager.start(
                    MainMenu.menu, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND
                )


async def unexpected(event: ErrorEvent, **data: Any) -> None:
    log.exception(
        "error while handling update %s", event.update.update_id, exc_info=event.exception
    )
    app: AppContext = data["app"]
    with app.translator.use(data.get("lang", app.consultation.source_language)):
        text = app.translator.gettext("Désolé, une erreur est survenue. Réessayez dans un instant.")
        if event.update.callback_query is not None:
            await event.update.callback_query.answer(text)
        elif event.update.message is not None and event.update.message.chat.type == "private":
            await event.update.message.answer(text)


def build_router() -> Router:
    r = Router(name="errors")
    menus = RecentMenus()

    async def on_stale(event: ErrorEvent, dialog_manager: DialogManager, **data: Any) -> None:
        await stale_button(event, dialog_manager, menus, **data)

    r.errors.register(on_stale, ExceptionTypeFilter(UnknownIntent, OutdatedIntent, UnknownState))
    r.errors.register(unexpected, F.update.callback_query | F.update.message)
    return r
