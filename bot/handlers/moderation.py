"""Moderation cards' buttons in the group chat, and /pending for moderators in private."""

from __future__ import annotations

from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.ideas import Decision, IdeaService
from bot.moderation import (
    REASONS,
    CommentAction,
    IdeaAction,
    ModeratorDirectory,
    decision_keyboard,
    decision_line,
    idea_card,
    reasons_keyboard,
)
from storage.models import Idea, Member
from storage.repositories.ideas import IdeaRepository


def _lang(app: AppContext) -> str:
    """The moderation group's language (its cards are shared by every moderator)."""
    return app.moderation_language


async def _allowed(
    query: CallbackQuery,
    bot: Bot,
    app: AppContext,
    moderators: ModeratorDirectory,
    member: Member | None,
) -> bool:
    _ = app.translator.gettext
    in_group = (
        query.message is not None
        and app.settings.moderation_chat_id is not None
        and query.message.chat.id == app.settings.moderation_chat_id
    )
    if not in_group:
        await query.answer(
            _("Ce bouton ne fonctionne que dans le groupe de modération."), show_alert=True
        )
        return False
    if not await moderators.is_moderator(bot, app, query.from_user.id, member):
        await query.answer(_("Seuls les modérateurs peuvent décider."), show_alert=True)
        return False
    return True


async def on_idea_action(
    query: CallbackQuery,
    callback_data: IdeaAction,
    bot: Bot,
    app: AppContext,
    session: AsyncSession,
    moderators: ModeratorDirectory,
    member: Member | None,
) -> None:
    if not await _allowed(query, bot, app, moderators, member):
        return
    _ = app.translator.gettext
    lang = _lang(app)
    service = IdeaService(session, app)
    action = callback_data.action
    idea = await IdeaRepository(session).get(callback_data.idea)
    if idea is None:
        await query.answer(_("Cette idée n’existe plus."), show_alert=True)
        return
    message = query.message
    if action in ("reject", "back"):
        if idea.status != "pending":
            await _already(query, app, idea)
            return
        keyboard = (
            reasons_keyboard(app, idea.id, lang)
            if action == "reject"
            else decision_keyboard(app, idea.id, lang)
        )
        await query.answer(_("Choisissez la raison du rejet.") if action == "reject" else None)
        if isinstance(message, Message):
            await message.edit_reply_markup(reply_markup=keyboard)
        return
    if action == "reason" and callback_data.reason not in REASONS:
        await query.answer(_("Raison inconnue."), show_alert=True)
        return
    name = query.from_user.full_name
    if action == "hide":
        result = await service.hide_idea(idea.id, query.from_user.id, name)
    elif action in ("approve", "reason"):
        result = await service.decide(
            idea.id,
            action == "approve",
            query.from_user.id,
            name,
            callback_data.reason if action == "reason" else None,
        )
    else:
        await query.answer(_("Ce bouton n’est plus actif."))
        return
    if result.outcome == Decision.ALREADY and result.idea is not None:
        await _already(query, app, result.idea)
        return
    assert result.idea is not None
    await query.answer(decision_line(app, result.idea, lang)[:200])
    if isinstance(message, Message):
        body = idea_card(app, result.idea, lang) if action != "hide" else (message.html_text or "")
        await message.edit_text(
            f"{body}\n\n{decision_line(app, result.idea, lang)}", reply_markup=None
        )


async def _already(query: CallbackQuery, app: AppContext, idea: Idea) -> None:
    _ = app.translator.gettext
    line = decision_line(app, idea, _lang(app)) or _("Déjà traitée.")
    await query.answer(_("Déjà décidé : {decision}").format(decision=line)[:200], show_alert=True)


async def on_comment_action(
    query: CallbackQuery,
    callback_data: CommentAction,
    bot: Bot,
    app: AppContext,
    session: AsyncSession,
    moderators: ModeratorDirectory,
    member: Member | None,
) -> None:
    if not await _allowed(query, bot, app, moderators, member):
        return
    _ = app.translator.gettext
    repo = IdeaRepository(session)
    comment = await repo.comment(callback_data.comment)
    if comment is None:
        await query.answer(_("Ce commentaire n’existe plus."), show_alert=True)
        return
    name = query.from_user.full_name
    hidden = await repo.hide_comment(comment.id, name)
    await session.commit()
    if not hidden:
        comment = await repo.comment(comment.id)
        await query.answer(
            _("Déjà masqué par {name}.").format(
                name=(comment.hidden_by_name if comment else None) or "—"
            ),
            show_alert=True,
        )
        return
    await query.answer(_("Commentaire masqué."))
    if isinstance(query.message, Message):
        await query.message.edit_text(
            (query.message.html_text or "")
            + "\n\n"
            + _("🙈 Masqué par {name}").format(name=escape(name)),
            reply_markup=None,
        )


async def pending(
    message: Message,
    bot: Bot,
    app: AppContext,
    session: AsyncSession,
    moderators: ModeratorDirectory,
    member: Member | None,
    lang: str,
) -> None:
    _ = app.translator.gettext
    if message.from_user is None or not await moderators.is_moderator(
        bot, app, message.from_user.id, member
    ):
        await message.answer(_("Cette commande est réservée aux modérateurs."))
        return
    ideas = await IdeaRepository(session).pending(app.consultation.id)
    if not ideas:
        await message.answer(_("Aucune idée n’attend de décision."))
        return
    lines = [_("<b>Idées en attente ({n})</b>").format(n=len(ideas))]
    service = IdeaService(session, app)
    for idea in ideas[:50]:
        project = service.project(idea.project_id)
        title = app.consultation.text(project.title, lang) if project else idea.project_id
        lines.append(
            _("• n° {id} — {project} : <b>{title}</b>").format(
                id=idea.id, project=escape(title), title=escape(idea.title)
            )
        )
    lines.append(_("Décidez depuis le groupe de modération."))
    await message.answer("\n".join(lines))


def build_router() -> Router:
    r = Router(name="moderation")
    r.callback_query.register(on_idea_action, IdeaAction.filter())
    r.callback_query.register(on_comment_action, CommentAction.filter())
    r.message.register(pending, Command("pending"), F.chat.type == "private")
    return r
