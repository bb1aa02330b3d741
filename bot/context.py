"""What every handler may receive by injection: the application's long-lived services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.consultation import Consultation
from bot.i18n import INTERFACE_LANGUAGES, Translator
from bot.phases import Timeline

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppContext:
    """Built once in app.py and placed in the dispatcher's workflow data as `app`."""

    settings: Settings
    consultation: Consultation
    sessionmaker: async_sessionmaker[AsyncSession]
    translator: Translator
    clock: Clock = system_clock
    bot_username: str = ""

    @property
    def timeline(self) -> Timeline:
        return Timeline(self.consultation)

    @property
    def languages(self) -> list[str]:
        return [lang for lang in self.consultation.languages if lang in INTERFACE_LANGUAGES]

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.settings.admin_ids
