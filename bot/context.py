"""What every handler may receive by injection: the application's long-lived services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.consultation import Consultation
from bot.i18n import INTERFACE_LANGUAGES, Translator
from bot.phases.timeline import Timeline
from bot.results.charts import ChartCache

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
    # Set by app.run once the sender runs: lets a handler's commit send at once.
    wake_outbox: Callable[[], None] = lambda: None
    # Hooks called with (delivery, message) when the outbox sent something (e.g. moderation cards).
    sent_hooks: list[Callable[..., Awaitable[None]]] = field(default_factory=list)
    # Results charts per language, rendered off the event loop, kept with their file_ids.
    charts: ChartCache = field(default_factory=ChartCache)

    async def on_delivery_sent(self, delivery: object, message: object) -> None:
        for hook in self.sent_hooks:
            await hook(self, delivery, message)

    @property
    def timeline(self) -> Timeline:
        return Timeline(self.consultation)

    @property
    def languages(self) -> list[str]:
        return [lang for lang in self.consultation.languages if lang in INTERFACE_LANGUAGES]

    @property
    def default_language(self) -> str:
        return self.consultation.source_language

    @property
    def moderation_language(self) -> str:
        """MODERATION_LANGUAGE when the consultation offers it, else its first language."""
        wanted = (self.settings.moderation_language or "").strip().lower()
        return wanted if wanted in self.languages else self.consultation.source_language

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.settings.admin_ids
