"""The application's configuration, as every handler may receive it (`app`).

The long-lived services (database sessions, translator, charts, the outbox's doorbell) are
not configuration: they are in bot/services.py, built once in bot/app.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.communes.lookup import CommuneDirectory
from bot.config import Settings
from bot.consultation import Consultation
from bot.i18n import INTERFACE_LANGUAGES
from bot.phases.timeline import Timeline

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class FileClock:
    """The wall clock moved by an offset in seconds read from a file (CLOCK_FILE): a test
    moves a running bot through its phases without waiting for them. Re-read on `reload`
    (the phase engine calls it on SIGUSR1), never per call: a tap costs no file read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = timedelta(0)
        self.reload()

    def reload(self) -> None:
        text = self.path.read_text().strip() if self.path.exists() else ""
        self.offset = timedelta(seconds=float(text or 0))

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def clock_for(settings: Settings) -> Clock:
    return FileClock(settings.clock_file) if settings.clock_file else system_clock


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
