"""The results commentary: the file's draft, reviewed by the organisers once the survey has
closed, with the real counts in front of them; approved, it follows the data.

When the survey closes, each organiser (ADMIN_IDS) receives the ranked counts, the draft in
every language and a card with ✅ Approve and ✏️ Edit. Until an organiser approves a version,
the results go out without commentary; a version approved after the results were broadcast
is sent to the same audience on its own. Every button carries the version it was shown with:
an older one (edited or approved since) changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from aiogram.types import InlineKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Phase, PhaseKind
from bot.context import AppContext
from bot.delivery.doorbell import OutboxDoorbell
from bot.i18n import Translator
from bot.organisers import audit
from bot.phases.kinds import COMMENTARY_CHARS
from bot.results.commentary_cards import (
    commentary_message,
    draft_message,
    draft_texts,
    keyboard_json,
    reader_text,
    review_card,
    review_intro,
    review_keyboard,
)
from bot.results.tally import compute, summary_parts
from bot.text_budget import units
from storage.repositories.audit import AuditRepository
from storage.repositories.commentary import CommentaryRecord, CommentaryRepository
from storage.repositories.members import languages_of, recipients
from storage.repositories.outbox import NewDelivery, OutboxRepository
from storage.repositories.transitions import TransitionRepository

PREVIEW_TOPIC = "commentary:preview"


class Outcome(StrEnum):
    DONE = "done"
    STALE = "stale"  # another version was saved since the organiser's screen
    APPROVED = "approved"  # a version was approved already: final
    MISSING = "missing"  # nothing to review (the survey is open, or no results phase)


@dataclass(frozen=True)
class Change:
    outcome: Outcome
    record: CommentaryRecord | None  # the commentary as it is now
    sent: int = 0  # approved after the results went out: to how many readers it follows


def results_topic(phase: Phase) -> str:
    return f"results:{phase.id}"


def commentary_key(consultation_id: str, phase: Phase, member_id: int) -> str:
    """One commentary per reader, whether it went with the results or after them."""
    return f"{consultation_id}:{results_topic(phase)}:{member_id}:commentary"


def too_long(html: str) -> bool:
    return units(html) > COMMENTARY_CHARS


class CommentaryService:
    def __init__(
        self,
        session: AsyncSession,
        app: AppContext,
        translator: Translator,
        doorbell: OutboxDoorbell,
    ) -> None:
        self.session = session
        self.app = app
        self.translator = translator
        self.doorbell = doorbell
        self.repo = CommentaryRepository(session)
        self.phase = app.consultation.phase(PhaseKind.RESULTS)

    async def current(self, lock: bool = False) -> CommentaryRecord | None:
        if self.phase is None:
            return None
        return await self.repo.get(self.app.consultation.id, self.phase.id, lock)

    # ------------------------------------------------------------ the survey closes

    async def open_review(self, now: datetime) -> int:
        """The file's draft becomes version 1 and every organiser gets the review; within the
        closing transition's transaction (the caller commits). How many organisers."""
        c, phase = self.app.consultation, self.phase
        if phase is None:
            return 0
        await self.repo.create(c.id, phase.id, draft_texts(c, phase), now)
        record = await self.current()
        assert record is not None
        admins = sorted(self.app.settings.admin_ids)
        languages = await languages_of(self.session, admins, c.source_language)
        results = await compute(self.session, c)
        items = []
        for admin in admins:
            lang = languages[admin]
            texts = [review_intro(c, phase, lang, self.translator)]
            texts += summary_parts(results, c, lang, self.translator)
            items += [
                NewDelivery(f"{c.id}:commentary:v1:{admin}:{i}", PREVIEW_TOPIC, admin, text=t)
                for i, t in enumerate(texts)
            ]
            items += self.review_deliveries(record, admin, lang, "v1")
        await OutboxRepository(self.session).enqueue(items, now)
        return len(admins)

    def review_messages(
        self, record: CommentaryRecord, lang: str
    ) -> list[tuple[str, InlineKeyboardMarkup | None]]:
        """Each language's draft, then the card with its buttons (in the organiser's language)."""
        c, tr = self.app.consultation, self.translator
        drafts = [(draft_message(c, record, code, lang, tr), None) for code in c.languages]
        card = (review_card(c, record, lang, tr), review_keyboard(record, lang, tr))
        return [*drafts, card]

    def review_deliveries(
        self, record: CommentaryRecord, chat_id: int, lang: str, batch: str
    ) -> list[NewDelivery]:
        """The review through the outbox (`batch` names this sending of it)."""
        key = f"{self.app.consultation.id}:commentary:{batch}:{chat_id}"
        return [
            NewDelivery(
                f"{key}:{i}", PREVIEW_TOPIC, chat_id, text=text, reply_markup=keyboard_json(markup)
            )
            for i, (text, markup) in enumerate(self.review_messages(record, lang), start=100)
        ]

    # ------------------------------------------------------------ the organisers decide

    async def approve(
        self, seen_version: int, actor_id: int, actor_name: str, now: datetime
    ) -> Change:
        c, phase = self.app.consultation, self.phase
        if phase is None or not await self.repo.approve(c.id, phase.id, seen_version, now):
            await self.session.rollback()
            return await self._refused()
        await AuditRepository(self.session).record(
            now, audit.Action.COMMENTARY_APPROVE, actor_id, actor_name, "commentary", seen_version
        )
        record = await self.current()
        assert record is not None
        sent = (
            await self._send_to_readers(record, phase, now)
            if await self._results_broadcast()
            else 0
        )
        await self.session.commit()
        self.doorbell.ring()
        return Change(Outcome.DONE, record, sent)

    async def revise(
        self,
        seen_version: int,
        texts: Mapping[str, str],
        actor_id: int,
        actor_name: str,
        now: datetime,
    ) -> Change:
        """The organiser's texts (HTML) for the languages they rewrote; the others are kept."""
        c, phase = self.app.consultation, self.phase
        given = {lang: t.strip() for lang, t in texts.items() if lang in c.languages and t.strip()}
        version = (
            await self.repo.revise(c.id, phase.id, seen_version, given, now)
            if phase is not None and given
            else None
        )
        if version is None:
            await self.session.rollback()
            if given:
                return await self._refused()
            return Change(Outcome.DONE, await self.current())  # nothing rewritten: unchanged
        await AuditRepository(self.session).record(
            now,
            audit.Action.COMMENTARY_EDIT,
            actor_id,
            actor_name,
            "commentary",
            version,
            "rewrote " + ", ".join(sorted(given)),
        )
        await self.session.commit()
        return Change(Outcome.DONE, await self.current())

    async def _refused(self) -> Change:
        record = await self.current()
        if record is None:
            return Change(Outcome.MISSING, None)
        return Change(Outcome.APPROVED if record.approved else Outcome.STALE, record)

    # ------------------------------------------------------------ readers

    async def for_readers(self, lock: bool = False) -> CommentaryRecord | None:
        """The approved commentary, None until there is one. `lock`: see the repository."""
        record = await self.current(lock)
        return record if record is not None and record.approved else None

    def reader_message(self, record: CommentaryRecord, lang: str) -> str | None:
        text = reader_text(self.app.consultation, record, lang)
        return commentary_message(text, lang, self.translator) if text else None

    async def _results_broadcast(self) -> bool:
        """Whether the results phase's opening was recorded as done (its broadcast queued)."""
        assert self.phase is not None
        key = f"{self.app.consultation.id}:{self.phase.id}:open"
        record = (await TransitionRepository(self.session).all()).get(key)
        return record is not None and record.status == "done"

    async def _send_to_readers(self, record: CommentaryRecord, phase: Phase, now: datetime) -> int:
        """Approved after the results went out: the commentary follows to the same audience."""
        c = self.app.consultation
        people = await recipients(self.session, phase.audience, c.source_language)
        items = []
        for member_id, lang in people:
            text = self.reader_message(record, lang)
            if text:
                items.append(
                    NewDelivery(
                        commentary_key(c.id, phase, member_id),
                        results_topic(phase),
                        member_id,
                        text=text,
                    )
                )
        await OutboxRepository(self.session).enqueue(items, now)
        return len(items)
