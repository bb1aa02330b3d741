"""A member's personal data: what we hold (/mydata) and its erasure (/forget)."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from html import escape

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.i18n import Translator, language_name, role_name
from bot.ideas.cards import comment_line, erased_line
from bot.organisers import audit
from bot.text_budget import clip_html, pack_lines
from bot.ui.presenters import when
from storage.models import Comment
from storage.repositories.audit import AuditRepository
from storage.repositories.cards import CardRepository
from storage.repositories.members import erase, personal_data
from storage.repositories.outbox import (
    delete_chat_deliveries,
    deliveries_quoting,
    replace_delivery_text,
    withdraw_delivery,
)

log = logging.getLogger(__name__)
# A free-text answer is shown up to this many characters in /mydata.
ANSWER_SHOWN = 1500


async def my_data_messages(
    session: AsyncSession, app: AppContext, translator: Translator, member_id: int, lang: str
) -> list[str]:
    """What we hold, in as many messages as it takes (free-text answers can be long)."""
    _ = translator.gettext
    data = await personal_data(session, member_id)
    if not data:
        return [_("Nous ne conservons aucune donnée à votre sujet.")]
    member = data["member"]
    c = app.consultation
    lines = [
        _("<b>Vos données</b>"),
        _("Identifiant Telegram : {id}").format(id=member.id),  # type: ignore[attr-defined]
        _("Prénom : {name}").format(name=escape(member.first_name or "—")),  # type: ignore[attr-defined]
        _("Langue : {lang}").format(
            lang=language_name(member.language, lang) if member.language else "—"  # type: ignore[attr-defined]
        ),
        _("Rôles : {roles}").format(
            roles=", ".join(sorted(_(role_name(r)) for r in member.role_names)) or "—"  # type: ignore[attr-defined]
        ),
        _("Inscrit le {date}").format(date=when(member.created_at, c, lang)),  # type: ignore[attr-defined]
    ]
    if member.commune_answered_at is not None:  # type: ignore[attr-defined]
        name = app.communes.name_of(member.commune, lang)  # type: ignore[attr-defined]
        lines.append(
            _("Commune : {name}").format(name=escape(name))
            if name
            else _("Commune : vous avez préféré ne pas la dire")
        )
    answers: dict[str, list[str]] = data["answers"]  # type: ignore[assignment]
    if answers:
        lines.append("")
        lines.append(_("<b>Vos réponses au sondage</b>"))
        for q in c.questions:
            if q.id in answers:
                labels = [
                    c.text(o.label, lang) for o in q.options if o.id in answers[q.id]
                ] or answers[q.id]
                question = clip_html(c.text(q.text, lang), 300)
                lines.append(f"• {question} → {clip_html(', '.join(labels), ANSWER_SHOWN)}")
    ideas = data["ideas"]
    lines.append("")
    lines.append(
        _("Idées : {ideas} · commentaires : {comments} · soutiens : {supports}").format(
            ideas=len(ideas),
            comments=data["comments"],
            supports=data["supports"],  # type: ignore[arg-type]
        )
    )
    lines.append("")
    lines.append(_("Pour tout effacer : /forget"))
    return pack_lines(lines[0], lines[1:])


@dataclass(frozen=True)
class GroupEdit:
    """A card already in the moderation group that quoted the member: edited in place."""

    chat_id: int
    message_id: int
    text: str
    reply_markup: str | None


async def forget(
    session: AsyncSession, app: AppContext, translator: Translator, member_id: int
) -> list[GroupEdit]:
    """Erase the member (see storage.repositories.members.erase) and every copy of what they
    wrote in the outbox, in one transaction. Returns the group cards to edit afterwards."""
    now = app.clock()
    lang = app.consultation.source_language
    erased = await erase(session, member_id, f":{member_id}:{member_id}:", now)
    await delete_chat_deliveries(session, member_id)

    neutral = erased_line(translator, lang)
    edits: dict[int, GroupEdit] = {}
    # Cards about their own ideas and comments only (each card re-sent from /pending, reports
    # about them): cancelled or replaced. A batched card that also carries others' comments
    # is redacted below instead.
    erased_targets = {("idea", i) for i in erased.idea_ids}
    erased_targets |= {("comment", i) for i in erased.comment_ids}
    theirs = {
        delivery.id: delivery
        for delivery, targets in await CardRepository(session).deliveries_of(
            erased.idea_ids, erased.comment_ids
        )
        if targets <= erased_targets  # cards posted before 0008: recorded by that migration
    }
    for delivery in theirs.values():
        await withdraw_delivery(session, delivery.id, neutral)
        if delivery.status == "sent" and delivery.message_id and delivery.is_group:
            edits[delivery.id] = GroupEdit(delivery.chat_id, delivery.message_id, neutral, None)

    # Everything else that quotes them (batched comment cards, others' notifications, digests).
    replacements = _quotes(erased.idea_titles, erased.comments)
    for delivery in await deliveries_quoting(session, [old for old, _new in replacements]):
        text = delivery.text or ""
        for old, new in replacements:
            text = text.replace(old, new)
        await replace_delivery_text(session, delivery.id, text)
        if delivery.status == "sent" and delivery.message_id and delivery.is_group:
            edits.setdefault(
                delivery.id,
                GroupEdit(delivery.chat_id, delivery.message_id, text, delivery.reply_markup),
            )

    await AuditRepository(session).forget_actor(member_id)
    await AuditRepository(session).record(
        now,
        audit.Action.ERASURE,
        target="member",
        detail=f"{len(erased.idea_ids)} idea(s), {len(erased.comment_ids)} comment(s) anonymised",
    )
    await session.commit()
    return list(edits.values())


def _quotes(titles: list[str], comments: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(as quoted in a message, what replaces it): the exact forms the bot writes."""
    hidden = "[…]"
    pairs: list[tuple[str, str]] = []
    for title in titles:
        pairs.append((f"« {escape(title)} »", f"« {hidden} »"))
        pairs.append((f"• {escape(title)} — ", f"• {hidden} — "))
    for name, text in comments:
        stub = Comment(author_name=name, text=text)
        pairs.append((comment_line(stub), hidden))
    return pairs


async def edit_group_cards(bot: Bot, edits: list[GroupEdit]) -> int:
    """Edit the cards already posted; one at a time (the group allows 20 a minute)."""
    done = 0
    for edit in edits:
        markup = (
            InlineKeyboardMarkup.model_validate(json.loads(edit.reply_markup))
            if edit.reply_markup
            else None
        )
        for _attempt in range(2):
            try:
                await bot.edit_message_text(
                    text=edit.text,
                    chat_id=edit.chat_id,
                    message_id=edit.message_id,
                    reply_markup=markup,
                )
                done += 1
                break
            except TelegramRetryAfter as exc:
                await asyncio.sleep(min(exc.retry_after, 30))
            except TelegramAPIError as exc:  # deleted by a moderator, too old to edit...
                log.info("could not edit card %s: %s", edit.message_id, exc)
                break
    return done
