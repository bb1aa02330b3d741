"""Ideas use cases: submit, moderate, support, comment, report, notify, digest."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import PhaseKind, Project
from bot.context import AppContext
from bot.delivery.doorbell import OutboxDoorbell
from bot.i18n import Translator
from bot.ideas.cards import (
    CARD_COMMENTS,
    REASONS,
    comment_card,
    comments_card,
    hide_idea_keyboard,
    hide_keyboard,
    idea_card,
    idea_card_delivery,
    idea_card_key,
    markup_json,
    moderation_chat_id,
)
from bot.ideas.rules import QUOTA_WINDOWS, Decision, DecisionResult, Quota, idea_link, quota_actor
from bot.ideas.similarity import most_similar
from bot.organisers import audit
from storage.models import Comment, Idea, Member, NotificationState
from storage.repositories.audit import AuditRepository
from storage.repositories.cards import CardMatch, CardRepository
from storage.repositories.communes import CommuneRepository
from storage.repositories.ideas import IdeaRepository
from storage.repositories.members import MemberRecord
from storage.repositories.outbox import NewDelivery, OutboxRepository
from storage.repositories.quotas import QuotaRepository

NOTIFY_EVERY = timedelta(minutes=10)
# Batched comment cards queued per round at most; the rest waits for the next round.
CARDS_PER_ROUND = 3
# A card's message id is written a few milliseconds after it was sent: a press that
# early waits up to this long for it (polling every CARD_SETTLE_POLL seconds).
CARD_SETTLE_SECONDS = 2.0
CARD_SETTLE_POLL = 0.05


class IdeaService:
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
        # Rung after each commit that queued deliveries: they leave at once.
        self.doorbell = doorbell
        self.repo = IdeaRepository(session)
        self.outbox = OutboxRepository(session)
        self.quotas = QuotaRepository(session)

    # ------------------------------------------------------------ phase rules

    def is_open(self, now: datetime | None = None) -> bool:
        return self.app.timeline.is_open(PhaseKind.IDEAS, now or self.app.clock())

    def is_readable(self, now: datetime | None = None) -> bool:
        return self.app.timeline.has_started(PhaseKind.IDEAS, now or self.app.clock())

    def projects(self) -> list[Project]:
        phase = self.app.consultation.phase(PhaseKind.IDEAS)
        return list(phase.projects) if phase else []

    def project(self, project_id: str) -> Project | None:
        return next((p for p in self.projects() if p.id == project_id), None)

    @property
    def group_lang(self) -> str:
        return self.app.moderation_language

    # ----------------------------------------------------------------- quotas

    def _quota(self, quota: Quota) -> tuple[int, timedelta]:
        settings = self.app.settings
        return {
            Quota.IDEAS: (settings.quota_ideas_per_day, QUOTA_WINDOWS[Quota.IDEAS]),
            Quota.COMMENTS: (settings.quota_comments_per_hour, QUOTA_WINDOWS[Quota.COMMENTS]),
            Quota.REPORTS: (settings.quota_reports_per_day, QUOTA_WINDOWS[Quota.REPORTS]),
        }[quota]

    async def within_quota(self, member: MemberRecord, quota: Quota) -> bool:
        """Whether the member may do one more of these now (organisers always may)."""
        limit, window = self._quota(quota)
        if limit == 0 or self.app.is_admin(member.id):
            return True
        actor = quota_actor(self.app, member.id)
        return await self.quotas.count(actor, quota, self.app.clock() - window) < limit

    async def _count_for_quota(self, member_id: int, quota: Quota, now: datetime) -> None:
        """Counted by quota_actor, not by author: erasing and registering again (/forget then
        /start) does not give a fresh quota. The caller commits."""
        if self.app.is_admin(member_id):
            return
        await self.quotas.record(
            quota_actor(self.app, member_id), quota, now, now - max(QUOTA_WINDOWS.values())
        )

    def quota_text(self, quota: Quota) -> str:
        translator = self.translator
        settings = self.app.settings
        if quota == Quota.IDEAS:
            n = settings.quota_ideas_per_day
            return translator.ngettext(
                "Vous avez déjà proposé {n} idée ces dernières 24 heures : c’est le maximum. "
                "Merci ! Revenez demain pour la suivante.",
                "Vous avez déjà proposé {n} idées ces dernières 24 heures : c’est le maximum. "
                "Merci ! Revenez demain pour la suivante.",
                n,
            ).format(n=n)
        if quota == Quota.COMMENTS:
            n = settings.quota_comments_per_hour
            return translator.ngettext(
                "Vous avez déjà écrit {n} commentaire cette dernière heure : c’est le maximum. "
                "Réessayez un peu plus tard, s’il vous plaît.",
                "Vous avez déjà écrit {n} commentaires cette dernière heure : c’est le maximum. "
                "Réessayez un peu plus tard, s’il vous plaît.",
                n,
            ).format(n=n)
        n = settings.quota_reports_per_day
        return translator.ngettext(
            "Vous avez déjà fait {n} signalement ces dernières 24 heures : c’est le maximum. "
            "Merci de votre vigilance ; réessayez demain.",
            "Vous avez déjà fait {n} signalements ces dernières 24 heures : c’est le maximum. "
            "Merci de votre vigilance ; réessayez demain.",
            n,
        ).format(n=n)

    # ----------------------------------------------------------------- submit

    async def similar(self, project_id: str, title: str, text: str) -> list[Idea]:
        candidates = await self.repo.approved_texts(self.app.consultation.id, project_id)
        found = most_similar(f"{title} {text}", [(i, f"{t} {x}") for i, t, x in candidates])
        ideas = [await self.repo.get(i) for i, _ in found]
        return [i for i in ideas if i is not None]

    async def submit(self, member: MemberRecord, project_id: str, title: str, text: str) -> Idea:
        now = self.app.clock()
        # The author's commune as it is now, kept on the idea (a later change does not move it).
        commune = (await CommuneRepository(self.session).of_member(member.id)).commune
        idea = await self.repo.create(
            self.app.consultation.id,
            project_id,
            member.id,
            member.first_name,
            title.strip(),
            text.strip(),
            now,
            commune if self.app.communes.get(commune) else None,
        )
        await self._count_for_quota(member.id, Quota.IDEAS, now)
        chat_id = await moderation_chat_id(self.session, self.app)
        if chat_id is not None:
            await self.outbox.enqueue(
                [
                    idea_card_delivery(
                        self.app, self.translator, idea, chat_id, idea_card_key(self.app, idea.id)
                    )
                ],
                now,
            )
        await self.session.commit()
        self.doorbell.ring()
        return idea

    async def withdraw(self, member: MemberRecord, idea_id: int) -> bool:
        done = await self.repo.withdraw(idea_id, member.id)
        await self.session.commit()
        return done

    # ------------------------------------------------------------- moderation

    async def card_is_current(
        self, target: str, target_id: int, chat_id: int, message_id: int
    ) -> bool:
        """Whether the pressed message was posted as a card of this idea or comment. A card
        sent a moment ago may not have its message id written yet: waited for, briefly."""
        cards = CardRepository(self.session)
        deadline = time.monotonic() + CARD_SETTLE_SECONDS
        while True:
            match = await cards.match(target, target_id, chat_id, message_id)
            if match != CardMatch.SETTLING or time.monotonic() >= deadline:
                return match == CardMatch.POSTED
            await asyncio.sleep(CARD_SETTLE_POLL)

    async def decide(
        self,
        idea_id: int,
        approve: bool,
        moderator_id: int,
        moderator_name: str,
        reason: str | None = None,
    ) -> DecisionResult:
        now = self.app.clock()
        status = "approved" if approve else "rejected"
        won = await self.repo.decide(idea_id, status, moderator_id, moderator_name, reason, now)
        idea = await self.repo.get(idea_id)
        if idea is None:
            await self.session.rollback()
            return DecisionResult(Decision.MISSING, None)
        if not won:
            await self.session.rollback()
            # The rollback expired `idea`: read it again (with the winner's decision).
            return DecisionResult(Decision.ALREADY, await self.repo.get(idea_id))
        await AuditRepository(self.session).record(
            now,
            audit.Action.APPROVE if approve else audit.Action.REJECT,
            moderator_id,
            moderator_name,
            "idea",
            idea_id,
            reason,
        )
        if idea.author_id is not None:
            await self._notify_author_of_decision(idea, now)
        await self.session.commit()
        self.doorbell.ring()
        return DecisionResult(Decision.DONE, idea)

    async def hide_idea(
        self, idea_id: int, moderator_id: int, moderator_name: str
    ) -> DecisionResult:
        now = self.app.clock()
        won = await self.repo.decide(
            idea_id, "hidden", moderator_id, moderator_name, None, now, from_status="approved"
        )
        if won:
            await AuditRepository(self.session).record(
                now,
                audit.Action.HIDE_IDEA,
                moderator_id,
                moderator_name,
                "idea",
                idea_id,
            )
        idea = await self.repo.get(idea_id)
        await self.session.commit()
        if idea is None:
            return DecisionResult(Decision.MISSING, None)
        return DecisionResult(Decision.DONE if won else Decision.ALREADY, idea)

    async def hide_comment(self, comment_id: int, moderator_id: int, moderator_name: str) -> bool:
        hidden = await self.repo.hide_comment(comment_id, moderator_name, moderator_id)
        if hidden:
            await AuditRepository(self.session).record(
                self.app.clock(),
                audit.Action.HIDE_COMMENT,
                moderator_id,
                moderator_name,
                "comment",
                comment_id,
            )
        await self.session.commit()
        return hidden

    async def _notify_author_of_decision(self, idea: Idea, now: datetime) -> None:
        lang = await self._language(idea.author_id)
        _ = self.translator.gettext
        title = escape(idea.title)
        if idea.status == "approved":
            text = _(
                "✅ Votre idée « {title} » a été approuvée : elle est visible par tous.\n{link}",
                locale=lang,
            ).format(title=title, link=idea_link(self.app, idea.id))
        else:
            reason = _(REASONS.get(idea.reject_reason or "", REASONS["other"]), locale=lang)
            text = _(
                "❌ Votre idée « {title} » n’a pas été retenue par les modérateurs. Raison : {reason}.",
                locale=lang,
            ).format(title=title, reason=reason)
        await self.outbox.enqueue(
            [
                NewDelivery(
                    f"{self.app.consultation.id}:decision:{idea.id}",
                    "decision",
                    idea.author_id or 0,
                    text=text,
                )
            ],
            now,
        )

    async def _language(self, member_id: int | None) -> str:
        member = await self.session.get(Member, member_id) if member_id else None
        lang = member.language if member else None
        return lang if lang in self.app.languages else self.app.consultation.source_language

    # ------------------------------------------------------ support & comments

    async def set_support(self, member: MemberRecord, idea_id: int, on: bool) -> bool:
        changed = await self.repo.set_support(idea_id, member.id, on, self.app.clock())
        await self.session.commit()
        return changed

    async def comment(
        self, member: MemberRecord, idea: Idea, text: str, parent: Comment | None
    ) -> Comment:
        now = self.app.clock()
        comment = await self.repo.add_comment(
            idea.id,
            member.id,
            member.first_name,
            text.strip(),
            parent.id if parent else None,
            now,
        )
        await self._count_for_quota(member.id, Quota.COMMENTS, now)
        # Its card leaves now if the group had none lately, else with the next batch.
        await self._card_comments(now)
        if idea.author_id is not None and idea.author_id != member.id:
            await self._note(idea.author_id, idea, replies=False, now=now)
        if parent is not None and parent.author_id not in (None, member.id, idea.author_id):
            await self._note(parent.author_id, idea, replies=True, now=now)  # type: ignore[arg-type]
        await self.session.commit()
        self.doorbell.ring()
        return comment

    async def card_comments(self) -> int:
        """Queue the batched cards of new comments that are due (scheduler job)."""
        cards = await self._card_comments(self.app.clock())
        await self.session.commit()
        if cards:
            self.doorbell.ring()
        return cards

    async def _card_comments(self, now: datetime) -> int:
        """New comments go to the group in cards of several, one round per
        `comment_cards_every` seconds at most: a busy thread cannot bury the group."""
        chat_id = await moderation_chat_id(self.session, self.app)
        if chat_id is None:
            return 0
        last = await self.repo.last_carded_at()
        every = timedelta(seconds=self.app.settings.comment_cards_every)
        if last is not None and now - last < every:
            return 0
        waiting = await self.repo.uncarded_comments(CARD_COMMENTS * CARDS_PER_ROUND)
        items = []
        for start in range(0, len(waiting), CARD_COMMENTS):
            chunk = waiting[start : start + CARD_COMMENTS]
            text, markup = comments_card(self.translator, chunk, self.group_lang)
            items.append(
                NewDelivery(
                    f"{self.app.consultation.id}:card:comments:{chunk[0][1].id}",
                    "moderation",
                    chat_id,
                    text=text,
                    reply_markup=markup_json(markup),
                    is_group=True,
                    cards=tuple(("comment", c.id) for _, c in chunk),
                )
            )
        if items:
            await self.outbox.enqueue(items, now)
            await self.repo.mark_carded([c.id for _, c in waiting], now)
        return len(items)

    async def _note(self, recipient: int, idea: Idea, replies: bool, now: datetime) -> None:
        """Count the event; notify at once unless this recipient was told < 10 min ago."""
        state = await self.repo.notification_state(recipient, idea.id)
        if replies:
            state.pending_replies += 1
        else:
            state.pending_comments += 1
        if state.last_sent_at is None or state.last_sent_at <= now - NOTIFY_EVERY:
            await self._send_note(state, idea, now)

    async def _send_note(self, state: NotificationState, idea: Idea, now: datetime) -> None:
        lang = await self._language(state.member_id)
        translator = self.translator
        parts = []
        if state.pending_comments:
            parts.append(
                translator.ngettext(
                    "💬 {n} nouveau commentaire sur votre idée « {title} ».",
                    "💬 {n} nouveaux commentaires sur votre idée « {title} ».",
                    state.pending_comments,
                    locale=lang,
                ).format(n=state.pending_comments, title=escape(idea.title))
            )
        if state.pending_replies:
            parts.append(
                translator.ngettext(
                    "↩️ {n} nouvelle réponse à votre commentaire sur « {title} ».",
                    "↩️ {n} nouvelles réponses à votre commentaire sur « {title} ».",
                    state.pending_replies,
                    locale=lang,
                ).format(n=state.pending_replies, title=escape(idea.title))
            )
        parts.append(idea_link(self.app, idea.id))
        await self.outbox.enqueue(
            [
                NewDelivery(
                    f"{self.app.consultation.id}:note:{state.member_id}:{idea.id}:{now.timestamp():.6f}",
                    "notification",
                    state.member_id,
                    text="\n".join(parts),
                )
            ],
            now,
        )
        state.last_sent_at = now
        state.pending_comments = 0
        state.pending_replies = 0

    async def flush_notifications(self) -> int:
        """Send what was held back by the 10-minute grouping (scheduler job)."""
        now = self.app.clock()
        states = await self.repo.due_notifications(now - NOTIFY_EVERY)
        for state in states:
            idea = await self.repo.get(state.idea_id)
            if idea is not None:
                await self._send_note(state, idea, now)
        await self.session.commit()
        if states:
            self.doorbell.ring()
        return len(states)

    async def report(self, member: MemberRecord, idea: Idea, comment: Comment | None) -> bool:
        now = self.app.clock()
        target, target_id = ("comment", comment.id) if comment else ("idea", idea.id)
        report_id = await self.repo.add_report(target, target_id, member.id, now)
        if report_id is None:
            # Already reported. Commit (its savepoint undid the insert) ends the transaction
            # without expiring `member` and `idea`, which the dialog still reads (a rollback would).
            await self.session.commit()
            return False
        await self._count_for_quota(member.id, Quota.REPORTS, now)
        chat_id = await moderation_chat_id(self.session, self.app)
        if chat_id is not None:
            lang = self.group_lang
            if comment is not None:
                text = comment_card(self.translator, idea, comment, lang, reported=True)
                markup = hide_keyboard(self.translator, comment.id, lang)
                card = ("comment", comment.id)
            else:
                text = (
                    self.translator.gettext("⚠️ <b>Idée signalée</b>", locale=lang)
                    + "\n\n"
                    + idea_card(self.app, self.translator, idea, lang)
                )
                markup = hide_idea_keyboard(self.translator, idea.id, lang)
                card = ("idea", idea.id)
            await self.outbox.enqueue(
                [
                    NewDelivery(
                        # The report's own id, not the reporter's: /forget leaves no trace here.
                        f"{self.app.consultation.id}:report:{target}:{target_id}:{report_id}",
                        "moderation",
                        chat_id,
                        text=text,
                        reply_markup=markup_json(markup),
                        is_group=True,
                        cards=(card,),
                    )
                ],
                now,
            )
        await self.session.commit()
        self.doorbell.ring()
        return True
