"""Alerts to the organisers (ADMIN_IDS), through the outbox, at most one per subject per hour:
the moderation group or a broadcast that keeps failing, a phase transition that failed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.i18n import Translator
from bot.ui.presenters import when
from storage.models import Delivery
from storage.repositories.members import languages_of
from storage.repositories.outbox import NewDelivery, OutboxRepository

ALERT_TOPIC = "alert"
EVERY = timedelta(hours=1)
# Transient errors in a row before a broadcast message counts as "keeps failing" (about a
# minute of trouble with the back-off), and before a moderation card does.
BROADCAST_AFTER = 5
GROUP_AFTER = 3


class AdminAlerts:
    def __init__(self, app: AppContext, translator: Translator) -> None:
        self.app = app
        self.translator = translator
        self.raised: set[str] = set()  # keys already queued by this process

    def _bucket(self, now: datetime) -> int:
        return int(now.timestamp() // EVERY.total_seconds())

    async def _queue(
        self,
        session: AsyncSession,
        subject: str,
        now: datetime,
        text: Callable[[str], str],
        hourly: bool = True,
    ) -> bool:
        """One alert per admin; the dedupe key keeps it to one per subject and hour, across
        instances too."""
        admins = sorted(self.app.settings.admin_ids)
        key = f"{self.app.consultation.id}:alert:{subject}"
        if hourly:
            key += f":{self._bucket(now)}"
        if not admins or key in self.raised:
            return False
        self.raised.add(key)
        languages = await languages_of(session, admins, self.app.consultation.source_language)
        items = [
            NewDelivery(f"{key}:{admin}"[:160], ALERT_TOPIC, admin, text=text(languages[admin]))
            for admin in admins
        ]
        await OutboxRepository(session).enqueue(items, now)
        return True

    async def delivery_trouble(
        self, session: AsyncSession, row: Delivery, error: str, permanent: bool, now: datetime
    ) -> bool:
        """After a failed send: alert when the moderation group, or a broadcast, keeps failing."""
        if row.topic == ALERT_TOPIC:
            return False  # never an alert about an alert
        attempts = row.attempts + 1
        translator = self.translator
        if row.is_group:
            if not permanent and attempts < GROUP_AFTER:
                return False

            def group_text(lang: str) -> str:
                return translator.gettext(
                    "⚠️ <b>Le groupe de modération ne reçoit plus les messages du bot</b> "
                    "({error}). Vérifiez que le bot est toujours membre du groupe et peut y "
                    "écrire. Détails : /status",
                    locale=lang,
                ).format(error=escape(error[:200]))

            return await self._queue(session, f"group:{row.chat_id}", now, group_text)
        if not permanent and attempts < BROADCAST_AFTER:
            return False
        topic = row.topic.split(":", 1)[0]

        def broadcast_text(lang: str) -> str:
            return translator.gettext(
                "⚠️ <b>Des envois « {topic} » échouent</b> ({error}). Les erreurs passagères "
                "sont réessayées ; les autres sont listées par /status et "
                "<code>consultbot outbox failed</code>.",
                locale=lang,
            ).format(topic=escape(topic), error=escape(error[:200]))

        return await self._queue(session, f"topic:{topic}", now, broadcast_text)

    async def transition_failed(
        self, session: AsyncSession, key: str, error: str, retry_at: datetime, now: datetime
    ) -> bool:
        """A phase transition raised: said once per transition (its retries are in /status)."""
        c = self.app.consultation
        translator = self.translator

        def text(lang: str) -> str:
            return translator.gettext(
                "⚠️ <b>La transition « {key} » a échoué</b> ({error}). Nouvel essai "
                "automatique le {when} ; les transitions suivantes ne l’attendent pas.",
                locale=lang,
            ).format(
                key=escape(key), error=escape(error[:200]), when=when(retry_at, c, lang, time=True)
            )

        return await self._queue(session, f"transition:{key}", now, text, hourly=False)
