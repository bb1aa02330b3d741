"""Moderation cards in the group chat: their text, their buttons, and who may press them."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Role
from bot.context import AppContext
from bot.i18n import N_, Translator
from bot.text_budget import clip_html
from storage.models import Comment, Idea
from storage.repositories.cards import CardRepository
from storage.repositories.chats import ChatRepository
from storage.repositories.ideas import IdeaRepository
from storage.repositories.members import MemberRecord
from storage.repositories.outbox import NewDelivery, OutboxRepository

log = logging.getLogger(__name__)

REASONS = {
    "off_topic": N_("Hors sujet"),
    "duplicate": N_("Doublon"),
    "offensive": N_("Propos offensants"),
    "personal": N_("Données personnelles"),
    "other": N_("Autre raison"),
}
# A demoted administrator must stop deciding quickly; chat_member updates refresh it sooner.
ADMINS_TTL = 60.0
# Comments per batched card (their hide buttons are one row each).
CARD_COMMENTS = 8


class IdeaAction(CallbackData, prefix="mi"):
    """approve | reject (shows reasons) | reason | back | hide (a reported idea)."""

    action: str
    idea: int
    reason: str = ""


class CommentAction(CallbackData, prefix="mc"):
    action: str  # hide
    comment: int


class PendingAction(CallbackData, prefix="mp"):
    """/pending in a private chat: resend (the idea's card to the moderation group)."""

    action: str
    idea: int


@dataclass
class ModeratorDirectory:
    """The moderation group's administrators (getChatAdministrators), cached at most `ttl`
    seconds and dropped on every chat_member update of the group. When Telegram cannot be
    asked, nobody is an administrator: a stale list must not let a demoted one decide."""

    ttl: float = ADMINS_TTL
    clock: Callable[[], float] = time.monotonic
    _cache: dict[int, tuple[float, frozenset[int]]] = field(default_factory=dict)

    async def admins(self, bot: Bot, chat_id: int) -> frozenset[int]:
        cached = self._cache.get(chat_id)
        now = self.clock()
        if cached and cached[0] > now:
            return cached[1]
        try:
            members = await bot.get_chat_administrators(chat_id)
        except TelegramAPIError:
            self._cache.pop(chat_id, None)
            return frozenset()
        ids = frozenset(m.user.id for m in members if not m.user.is_bot)
        self._cache[chat_id] = (now + self.ttl, ids)
        return ids

    def forget(self, chat_id: int) -> None:
        """Someone's status in the group changed: ask Telegram again next time."""
        self._cache.pop(chat_id, None)

    async def is_moderator(
        self,
        bot: Bot,
        app: AppContext,
        user_id: int,
        member: MemberRecord | None,
        chat_id: int | None = None,
    ) -> bool:
        """`chat_id`: the moderation group as it is now (see `moderation_chat_id`)."""
        if app.is_admin(user_id):
            return True
        if member is not None and Role.MODERATOR in member.role_names:
            return True
        chat_id = chat_id if chat_id is not None else app.settings.moderation_chat_id
        return chat_id is not None and user_id in await self.admins(bot, chat_id)


# ------------------------------------------------------------ the moderation group


async def moderation_chat_id(session: AsyncSession, app: AppContext) -> int | None:
    """MODERATION_CHAT_ID, or the supergroup it became (Telegram changes a group's id when it
    upgrades it; the new id is stored when we learn it)."""
    configured = app.settings.moderation_chat_id
    if configured is None:
        return None
    return await ChatRepository(session).current_id(configured)


def idea_card_key(app: AppContext, idea_id: int) -> str:
    """The outbox key of an idea's card: queued once, whoever queues it."""
    return f"{app.consultation.id}:card:idea:{idea_id}"


def idea_card_delivery(
    app: AppContext, translator: Translator, idea: Idea, chat_id: int, key: str
) -> NewDelivery:
    lang = app.moderation_language
    return NewDelivery(
        key,
        "moderation",
        chat_id,
        text=idea_card(app, translator, idea, lang),
        reply_markup=markup_json(decision_keyboard(translator, idea.id, lang)),
        is_group=True,
        cards=(("idea", idea.id),),
    )


async def card_waiting_ideas(
    session: AsyncSession, app: AppContext, translator: Translator, now: datetime
) -> int:
    """Queue the card of every pending idea that has none in the group (submitted while no
    group was configured, or carded in a group since upgraded to a supergroup, whose old
    cards' buttons no longer count); returns how many. The caller commits."""
    chat_id = await moderation_chat_id(session, app)
    if chat_id is None:
        return 0
    outbox = OutboxRepository(session)
    cards = CardRepository(session)
    missing = [
        idea
        for idea in await IdeaRepository(session).pending(app.consultation.id)
        if not await cards.in_chat("idea", idea.id, chat_id)
    ]
    items = []
    for idea in missing:
        key = idea_card_key(app, idea.id)
        if await outbox.delivery(key) is not None:  # carded in the group's former self
            key = f"{key}:in:{chat_id}"
        items.append(idea_card_delivery(app, translator, idea, chat_id, key))
    await outbox.enqueue(items, now)
    if missing:
        log.info("moderation: %d waiting idea(s) carded to the group %s", len(missing), chat_id)
    return len(missing)


async def resend_card(
    session: AsyncSession, app: AppContext, translator: Translator, idea: Idea, now: datetime
) -> bool:
    """Queue the idea's card again (lost, deleted, or the bot was out of the group); at most
    once a minute per idea, so a double tap sends one. False without a moderation group."""
    chat_id = await moderation_chat_id(session, app)
    if chat_id is None:
        return False
    key = f"{idea_card_key(app, idea.id)}:again:{int(now.timestamp()) // 60}"
    delivery = idea_card_delivery(app, translator, idea, chat_id, key)
    await OutboxRepository(session).enqueue([delivery], now)
    return True


async def follow_chat_migration(
    session: AsyncSession,
    app: AppContext,
    translator: Translator,
    old_chat_id: int,
    new_chat_id: int,
    now: datetime,
) -> bool:
    """The moderation group became a supergroup: store its new id (used from now on), move
    what waits for the old one, and card what was never carded. The caller commits."""
    if old_chat_id != await moderation_chat_id(session, app):
        return False
    await ChatRepository(session).record_migration(old_chat_id, new_chat_id, now)
    await OutboxRepository(session).move_chat(old_chat_id, new_chat_id, now)
    await card_waiting_ideas(session, app, translator, now)
    log.warning("moderation: the group %s is now the supergroup %s", old_chat_id, new_chat_id)
    return True


def markup_json(markup: InlineKeyboardMarkup) -> str:
    return json.dumps(markup.model_dump(exclude_none=True), ensure_ascii=False)


def decision_keyboard(translator: Translator, idea_id: int, lang: str) -> InlineKeyboardMarkup:
    _ = translator.gettext
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("✅ Approuver", locale=lang),
                    callback_data=IdeaAction(action="approve", idea=idea_id).pack(),
                ),
                InlineKeyboardButton(
                    text=_("❌ Rejeter", locale=lang),
                    callback_data=IdeaAction(action="reject", idea=idea_id).pack(),
                ),
            ]
        ]
    )


def reasons_keyboard(translator: Translator, idea_id: int, lang: str) -> InlineKeyboardMarkup:
    _ = translator.gettext
    rows = [
        [
            InlineKeyboardButton(
                text=_(label, locale=lang),
                callback_data=IdeaAction(action="reason", idea=idea_id, reason=key).pack(),
            )
        ]
        for key, label in REASONS.items()
    ]
    rows.append(
        [
            InlineKeyboardButton(
                text=_("◀️ Retour", locale=lang),
                callback_data=IdeaAction(action="back", idea=idea_id).pack(),
            )
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def hide_keyboard(translator: Translator, comment_id: int, lang: str) -> InlineKeyboardMarkup:
    hide = CommentAction(action="hide", comment=comment_id)
    return _one_button(translator.gettext("🙈 Masquer", locale=lang), hide.pack())


def hide_idea_keyboard(translator: Translator, idea_id: int, lang: str) -> InlineKeyboardMarkup:
    hide = IdeaAction(action="hide", idea=idea_id)
    return _one_button(translator.gettext("🙈 Retirer l’idée", locale=lang), hide.pack())


def _one_button(text: str, callback_data: str) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(text=text, callback_data=callback_data)
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def erased_line(translator: Translator, lang: str) -> str:
    return translator.gettext("🗑 Contenu effacé à la demande de son auteur.", locale=lang)


def idea_title_html(translator: Translator, idea: Idea, lang: str, limit: int = 300) -> str:
    if idea.erased_at is not None or not idea.title:
        return translator.gettext("(idée effacée par son auteur)", locale=lang)
    return clip_html(idea.title, limit)


def comment_text_html(translator: Translator, comment: Comment, lang: str, limit: int) -> str:
    if comment.erased_at is not None:
        return erased_line(translator, lang)
    return clip_html(comment.text, limit)


def idea_card(app: AppContext, translator: Translator, idea: Idea, lang: str) -> str:
    c = app.consultation
    _ = translator.gettext
    phase = next((p for p in c.phases if p.project(idea.project_id)), None)
    project = phase.project(idea.project_id) if phase else None
    body = (
        erased_line(translator, lang) if idea.erased_at is not None else clip_html(idea.text, 3000)
    )
    return "\n".join(
        [
            _("💡 <b>Nouvelle idée n° {id}</b> — {project}", locale=lang).format(
                id=idea.id,
                project=escape(c.text(project.title, lang)) if project else idea.project_id,
            ),
            "",
            f"<b>{idea_title_html(translator, idea, lang)}</b>",
            body,
            "",
            _("Par {name}", locale=lang).format(name=clip_html(idea.author_name or "—", 130))
            + commune_mark(app, idea, lang, " · "),
        ]
    )


def commune_mark(app: AppContext, idea: Idea, lang: str, before: str = "") -> str:
    """ "📍 Namur": where the idea comes from (its author's commune), or nothing."""
    name = app.communes.name_of(idea.commune, lang)
    return f"{before}📍 {escape(name)}" if name else ""


def comment_card(
    translator: Translator, idea: Idea, comment: Comment, lang: str, reported: bool
) -> str:
    _ = translator.gettext
    head = (
        _("⚠️ <b>Commentaire signalé</b> sur l’idée n° {id} « {title} »", locale=lang)
        if reported
        else _("💬 <b>Nouveau commentaire</b> sur l’idée n° {id} « {title} »", locale=lang)
    )
    return "\n".join(
        [
            head.format(id=idea.id, title=idea_title_html(translator, idea, lang)),
            "",
            comment_text_html(translator, comment, lang, 3000),
            "",
            _("Par {name}", locale=lang).format(name=clip_html(comment.author_name or "—", 130)),
        ]
    )


def comment_line(comment: Comment) -> str:
    """One comment in a batched card; also what /forget looks for to redact it."""
    return f"<b>{clip_html(comment.author_name or '—', 40)}</b> : {clip_html(comment.text, 300)}"


def comments_card(
    translator: Translator, items: Sequence[tuple[Idea, Comment]], lang: str
) -> tuple[str, InlineKeyboardMarkup]:
    """Several new comments in one card (the group gets 20 messages a minute), one 🙈 each."""
    _ = translator.gettext
    lines = [
        translator.ngettext(
            "💬 <b>{n} nouveau commentaire</b>",
            "💬 <b>{n} nouveaux commentaires</b>",
            len(items),
            locale=lang,
        ).format(n=len(items))
    ]
    rows = []
    for idea, comment in items:
        lines.append("")
        lines.append(
            _("n° {comment} · idée n° {id} « {title} »", locale=lang).format(
                comment=comment.id, id=idea.id, title=idea_title_html(translator, idea, lang, 60)
            )
        )
        lines.append(comment_line(comment))
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("🙈 Masquer n° {id}", locale=lang).format(id=comment.id),
                    callback_data=CommentAction(action="hide", comment=comment.id).pack(),
                )
            ]
        )
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def decision_line(app: AppContext, translator: Translator, idea: Idea, lang: str) -> str:
    _ = translator.gettext
    from bot.ui.presenters import when

    moment = when(idea.decided_at, app.consultation, lang, time=True) if idea.decided_at else ""
    name = clip_html(idea.decided_by_name or "—", 130)
    if idea.status == "approved":
        return _("✅ Approuvée par {name} le {when}", locale=lang).format(name=name, when=moment)
    if idea.status == "rejected":
        reason = _(REASONS.get(idea.reject_reason or "", REASONS["other"]), locale=lang)
        return _("❌ Rejetée par {name} le {when} ({reason})", locale=lang).format(
            name=name, when=moment, reason=reason
        )
    if idea.status == "hidden":
        return _("🙈 Retirée par {name} le {when}", locale=lang).format(name=name, when=moment)
    if idea.status == "withdrawn":
        return _("↩️ Retirée par son auteur", locale=lang)
    return ""
