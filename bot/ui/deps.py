"""What the middlewares give a dialog, typed: one place knows the keys of `middleware_data`.

Getters may instead declare typed keyword parameters (`app: AppContext`, `lang: str`):
aiogram-dialog passes middleware data to getters as keyword arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram_dialog import DialogManager

if TYPE_CHECKING:  # bot.context imports much of bot/: only the types are needed here
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.context import AppContext
    from bot.delivery.doorbell import OutboxDoorbell
    from bot.i18n import Translator
    from bot.results.charts import ChartCache
    from bot.results.service import ResultsCache
    from bot.services import UpdateServices
    from storage.repositories.members import MemberRecord


def app_of(manager: DialogManager) -> AppContext:
    """The application's configuration (bot/app.py puts it in the dispatcher's data)."""
    return manager.middleware_data["app"]


def session_of(manager: DialogManager) -> AsyncSession:
    """The update's database session (DbSessionMiddleware)."""
    return manager.middleware_data["session"]


def member_of(manager: DialogManager) -> MemberRecord | None:
    """The member behind the update, None for someone we hold nothing about (MemberMiddleware)."""
    return manager.middleware_data.get("member")


def lang_of(manager: DialogManager) -> str:
    """The interface language of the update (MemberMiddleware)."""
    return manager.middleware_data["lang"]


def translator_of(manager: DialogManager) -> Translator:
    """The translator, set to the update's language (bot/app.py, MemberMiddleware)."""
    return manager.middleware_data["translator"]


def services_of(manager: DialogManager) -> UpdateServices:
    """The use cases bound to the update's session (DbSessionMiddleware)."""
    return manager.middleware_data["services"]


def charts_of(manager: DialogManager) -> ChartCache:
    """The results charts, rendered once per language (bot/app.py)."""
    return manager.middleware_data["charts"]


def results_cache_of(manager: DialogManager) -> ResultsCache:
    """The results of the latest data version, computed once per change (bot/app.py)."""
    return manager.middleware_data["results_cache"]


def doorbell_of(manager: DialogManager) -> OutboxDoorbell:
    """Rung after a commit that queued deliveries (bot/app.py)."""
    return manager.middleware_data["doorbell"]


def use_session(manager: DialogManager, session: AsyncSession) -> None:
    """Another database session for the rest of the update, with the use cases bound to it
    (the update's own one closed with a failed handler)."""
    manager.middleware_data["session"] = session
    manager.middleware_data["services"] = services_of(manager).with_session(session)
