"""Errors: a stale dialog button draws the open screen again, leaves it be, or restarts the
menu; anything else is logged and apologised for."""

from __future__ import annotations

import logging
import time
from functools import partial

from aiogram import F, Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.fsm.state import State
from aiogram.types import Chat, ErrorEvent
from aiogram_dialog import DialogManager, ShowMode, StartMode
from aiogram_dialog.api.exceptions import OutdatedIntent, UnknownIntent, UnknownState
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.context import AppContext
from bot.i18n import Translator
from bot.ui.deps import use_session
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
    event: ErrorEvent,
    dialog_manager: DialogManager,
    app: AppContext,
    translator: Translator,
    sessionmaker: async_sessionmaker[AsyncSession],
    lang: str | None = None,
    event_chat: Chat | None = None,
    *,
    menus: RecentMenus,
) -> None:
    with translator.use(lang or app.consultation.source_language):
        query = event.update.callback_query
        if query is not None and _on_screen_now(event, dialog_manager):
            # A tap on a dialog another one replaced in the same message (📝 tapped twice, or
            # a commune tapped twice: the closed commune dialog's message now holds the first
            # question): the member is looking at the current screen. Draw it again, then
            # answer.
            async with sessionmaker() as session:
                use_session(dialog_manager, session)
                await dialog_manager.show()
            await query.answer()
            return
        # A button of an older message. A member with a dialog open in another message (the
        # survey's question below the menu they tapped twice) is told, and that screen stays
        # as it is: a fresh menu would close it under the member's next taps, already on
        # their way. Drawing it again below would leave two live screens when one of those
        # taps edits the old one. Without an open dialog, or on the menu, a fresh menu.
        current = _current_screen(event, dialog_manager)
        _ = translator.gettext
        if current is not None and current != MainMenu.menu:
            if query is not None:
                await query.answer(_("Ce bouton n’est plus actif."))
            return
        text = _("Ce bouton n’est plus actif : voici le menu à jour.")
        if query is not None:
            await query.answer(text)
        if event_chat is not None and event_chat.type == "private" and menus.first(event_chat.id):
            # The update's own session closed with the failed handler: the menu gets a new one.
            async with sessionmaker() as session:
                use_session(dialog_manager, session)
                await dialog_manager.start(
                    MainMenu.menu, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND
                )


def _on_screen_now(event: ErrorEvent, manager: DialogManager) -> bool:
    """An outdated or closed dialog's button in the message the current dialog is drawn in."""
    query = event.update.callback_query
    if not isinstance(event.exception, OutdatedIntent | UnknownIntent) or query is None:
        return False
    if query.message is None or not manager.has_context():
        return False
    return query.message.message_id == manager.current_stack().last_message_id


def _current_screen(event: ErrorEvent, manager: DialogManager) -> State | None:
    """The state of the member's open dialog, when a stale button was tapped."""
    if event.update.callback_query is None or isinstance(event.exception, UnknownState):
        return None  # a state this version no longer has cannot be drawn: the menu
    if not manager.has_context():
        return None
    return manager.current_context().state


async def unexpected(
    event: ErrorEvent, app: AppContext, translator: Translator, lang: str | None = None
) -> None:
    log.exception(
        "error while handling update %s", event.update.update_id, exc_info=event.exception
    )
    with translator.use(lang or app.consultation.source_language):
        text = translator.gettext("Désolé, une erreur est survenue. Réessayez dans un instant.")
        if event.update.callback_query is not None:
            await event.update.callback_query.answer(text)
        elif event.update.message is not None and event.update.message.chat.type == "private":
            await event.update.message.answer(text)


def build_router() -> Router:
    r = Router(name="errors")
    # The menus sent lately by this dispatcher's router.
    on_stale = partial(stale_button, menus=RecentMenus())
    r.errors.register(on_stale, ExceptionTypeFilter(UnknownIntent, OutdatedIntent, UnknownState))
    r.errors.register(unexpected, F.update.callback_query | F.update.message)
    return r
