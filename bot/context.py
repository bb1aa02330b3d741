"""The application's configuration, as every handler may receive it (`app`).

The long-lived services (database sessions, translator, charts, the outbox's doorbell) are
not configuration: they are in bot/services.py, built once in bot/app.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.communes.lookup import CommuneDirectory
from bot.config import Settings
from bot.consultation import Consultation
from bot.i18n import INTERFACE_LANGUAGES
from bot.phases.timeline import Timeline

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppContext:
    """Built once in app.py and placed in the dispatcher's data as `app`."""

    settings: Settings
    consultation: Consultation
    clock: Clock = system_clock
    # Learnt from Telegram at start-up (getMe), before the first update.
    bot_username: str = ""
    _communes: CommuneDirectory | None = field(default=None, init=False, repr=False)

    @property
    def communes(self) -> CommuneDirectory:
        """The consultation's communes, indexed once (again if the consultation is replaced)."""
        directory = self._communes
        if directory is None or directory.communes is not self.consultation.communes:
            directory = CommuneDirectory(
                self.consultation.communes, self.consultation.source_language
            )
            self._communes = directory
        return directory

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
