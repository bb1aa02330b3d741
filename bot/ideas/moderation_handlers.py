"""Moderation cards' buttons in the group chat, and /pending for moderators in private."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import (
    CallbackQuery,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.delivery.doorbell import OutboxDoorbell
from bot.i18n import Translator
from bot.ideas.cards import (
    REASONS,
    CommentAction,
    IdeaAction,
    ModeratorDirectory,
    PendingAction,
    decision_keyboard,
    decision_line,
    follow_chat_migration,
    idea_card,
    moderation_chat_id,
    reasons_keyboard,
    resend_card,
)
from bot.ideas.rules import Decision, parse_id
from bot.services import UpdateServices
from bot.telegram.filters import GroupMigrated, PrivateChat
from bot.text_budget import MESSAGE_BUDGET, clip_html, fit, pack_lines
from storage.models import Idea
from storage.repositories.ideas import IdeaRepository
from storage.repositories.members import MemberRecord

# /pending lists this many ideas at most (in as many messages as needed).
PENDING_LISTED = 200
# … and offers to resend the card of the first ones (a keyboard holds about 100 buttons).
PENDING_SHOWN = 50


def _lang(app: AppContext) -> str:
    """The moderation group's language (its cards are shared by every moderator)."""
    return app.moderation_language


async def _allowed(
    query: CallbackQuery,
    bot: Bot,
    app: AppContext,
    translator: Translator,
    session: AsyncSession,
    moderators: ModeratorDirectory,
    member: MemberRecord | None,
) -> bool:
    _ = translator.gettext
    chat_id = await moderation_chat_id(session, app)
    in_group = (
        query.message is not None and chat_id is not None and query.message.chat.id == chat_id
    )
    if not in_group:
        await query.answer(
            _("Ce bouton ne fonctionne que dans le groupe de modération."), show_alert=True
        )
        return False
    if not await moderators.is_moderator(bot, app, query.from_user.id, member, chat_id):
        await query.answer(_("Seuls les modérateurs peuvent décider."), show_alert=True)
        return False
    return True


async def _on_its_card(
    query: CallbackQuery,
    translator: Translator,
    services: UpdateServices,
    target: str,
    target_id: int,
) -> bool:
    """A button counts only on the message it was posted as: a card from before a restored
    backup, or one whose id was handed out again, changes nothing."""
    message = query.message
    if message is not None and await services.ideas.card_is_current(
        target, target_id, message.chat.id, message.message_id
    ):
        return True
    await query.answer(
        translator.gettext(
            "Cette carte n’est plus à jour : rien n’a été changé. /pending (en privé) "
            "renvoie la carte d’une idée en attente."
        ),
        show_alert=True,
    )
    return False


@dataclass(frozen=True)
class ModerationTurn:
    """A moderation button pressed: who pressed it, on which card, and what it needs."""

    query: CallbackQuery
    bot: Bot
    app: AppContext
    translator: Translator
    session: AsyncSession
    services: UpdateServices
    moderators: ModeratorDirectory
    member: MemberRecord | None

    async def may_act(self, kind: str, target_id: int | None) -> bool:
        """A moderator, pressing a card the target's own (see `_on_its_card`)."""
        if not await _allowed(
            self.query,
            self.bot,
            self.app,
            self.translator,
            self.session,
            self.moderators,
            self.member,
        ):
            return False
        return target_id is None or await _on_its_card(
            self.query, self.translator, self.services, kind, target_id
        )


async def on_idea_action(
    query: CallbackQuery,
    callback_data: IdeaAction,
    bot: Bot,
    app: AppContext,
    translator: Translator,
    session: AsyncSession,
    services: UpdateServices,
    moderators: ModeratorDirectory,
    member: MemberRecord | None,
) -> None:
    idea_id = parse_id(callback_data.idea)
    turn = ModerationTurn(query, bot, app, translator, session, services, moderators, member)
    if not await turn.may_act("idea", idea_id):
        return
    _ = translator.gettext
    lang = _lang(app)
    service = services.ideas
    action = callback_data.action
    idea = await IdeaRepository(session).get(idea_id) if idea_id else None
    if idea is None:
        await query.answer(_("Cette idée n’existe plus."), show_alert=True)
        return
    message = query.message
    if action in ("reject", "back"):
        if idea.status != "pending":
            await _already(query, app, translator, idea)
            return
        keyboard = (
            reasons_keyboard(translator, idea.id, lang)
            if action == "reject"
            else decision_keyboard(translator, idea.id, lang)
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
        await _already(query, app, translator, result.idea)
        return
    assert result.idea is not None
    line = decision_line(app, translator, result.idea, lang)
    await query.answer(line[:200])
    if isinstance(message, Message):
        body = (
            idea_card(app, translator, result.idea, lang)
            if action != "hide"
            else (message.html_text or "")
        )
        await message.edit_text(
            fit(body, MESSAGE_BUDGET - len(line) - 2) + f"\n\n{line}", reply_markup=None
        )


async def _already(
    query: CallbackQuery, app: AppContext, translator: Translator, idea: Idea
) -> None:
    _ = translator.gettext
    line = decision_line(app, translator, idea, _lang(app)) or _("Déjà traitée.")
    await query.answer(_("Déjà décidé : {decision}").format(decision=line)[:200], show_alert=True)


async def on_comment_action(
    query: CallbackQuery,
    callback_data: CommentAction,
    bot: Bot,
    app: AppContext,
    translator: Translator,
    session: AsyncSession,
    services: UpdateServices,
    moderators: ModeratorDirectory,
    member: MemberRecord | None,
) -> None:
    comment_id = parse_id(callback_data.comment)
    turn = ModerationTurn(query, bot, app, translator, session, services, moderators, member)
    if not await turn.may_act("comment", comment_id):
        return
    _ = translator.gettext
    repo = IdeaRepository(session)
    comment = await repo.comment(comment_id) if comment_id else None
    if comment is None:
        await query.answer(_("Ce commentaire n’existe plus."), show_alert=True)
        return
    name = query.from_user.full_name
    hidden = await services.ideas.hide_comment(comment.id, query.from_user.id, name)
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
        line = _("🙈 n° {id} masqué par {name}").format(id=comment.id, name=clip_html(name, 130))
        # A batched card keeps the buttons of its other comments.
        markup = query.message.reply_markup
        rest = [
            row
            for row in (markup.inline_keyboard if markup else [])
            if not any(b.callback_data == query.data for b in row)
        ]
        await query.message.edit_text(
            fit(query.message.html_text or "", MESSAGE_BUDGET - len(line) - 2) + f"\n\n{line}",
            reply_markup=InlineKeyboardMarkup(inline_keyboard=rest) if rest else None,
        )


async def pending(
    message: Message,
    bot: Bot,
    app: AppContext,
    translator: Translator,
    session: AsyncSession,
    services: UpdateServices,
    moderators: ModeratorDirectory,
    member: MemberRecord | None,
    lang: str,
) -> None:
    _ = translator.gettext
    chat_id = await moderation_chat_id(session, app)
    if message.from_user is None or not await moderators.is_moderator(
        bot, app, message.from_user.id, member, chat_id
    ):
        await message.answer(_("Cette commande est réservée aux modérateurs."))
        return
    ideas = await IdeaRepository(session).pending(app.consultation.id)
    if not ideas:
        await message.answer(_("Aucune idée n’attend de décision."))
        return
    header = _("<b>Idées en attente ({n})</b>").format(n=len(ideas))
    lines = []
    for idea in ideas[:PENDING_LISTED]:
        project = services.ideas.project(idea.project_id)
        title = app.consultation.text(project.title, lang) if project else idea.project_id
        lines.append(
            _("• n° {id} — {project} : <b>{title}</b>").format(
                id=idea.id, project=clip_html(title, 60), title=clip_html(idea.title, 120)
            )
        )
    if len(ideas) > PENDING_LISTED:
        lines.append(_("… et {n} de plus.").format(n=len(ideas) - PENDING_LISTED))
    markup = None
    if chat_id is None:
        lines.append(
            _(
                "Aucun groupe de modération n’est configuré (MODERATION_CHAT_ID) : les cartes "
                "des idées y seront envoyées dès qu’il le sera."
            )
        )
    else:
        lines.append(_("Décidez depuis le groupe de modération."))
        lines.append(_("Une carte manque dans le groupe ? Renvoyez-la avec son bouton 🔁."))
        buttons = [
            InlineKeyboardButton(
                text=_("🔁 n° {id}").format(id=idea.id),
                callback_data=PendingAction(action="resend", idea=idea.id).pack(),
            )
            for idea in ideas[:PENDING_SHOWN]
        ]
        markup = InlineKeyboardMarkup(
            inline_keyboard=[buttons[i : i + 4] for i in range(0, len(buttons), 4)]
        )
    parts = pack_lines(header, lines)
    for i, part in enumerate(parts):
        await message.answer(part, reply_markup=markup if i == len(parts) - 1 else None)


async def on_pending_action(
    query: CallbackQuery,
    callback_data: PendingAction,
    bot: Bot,
    app: AppContext,
    translator: Translator,
    session: AsyncSession,
    doorbell: OutboxDoorbell,
    moderators: ModeratorDirectory,
    member: MemberRecord | None,
) -> None:
    """🔁 under /pending: the idea's card sent to the moderation group again."""
    _ = translator.gettext
    chat_id = await moderation_chat_id(session, app)
    if not await moderators.is_moderator(bot, app, query.from_user.id, member, chat_id):
        await query.answer(_("Cette commande est réservée aux modérateurs."), show_alert=True)
        return
    idea = await IdeaRepository(session).get(callback_data.idea)
    if callback_data.action != "resend" or idea is None:
        await query.answer(_("Cette idée n’existe plus."), show_alert=True)
        return
    if idea.status != "pending":
        await _already(query, app, translator, idea)
        return
    if not await resend_card(session, app, translator, idea, app.clock()):
        await query.answer(_("Aucun groupe de modération n’est configuré."), show_alert=True)
        return
    await session.commit()
    doorbell.ring()
    await query.answer(
        _("La carte de l’idée n° {id} est renvoyée au groupe de modération.").format(id=idea.id)
    )


async def on_chat_migrated(
    message: Message,
    app: AppContext,
    translator: Translator,
    session: AsyncSession,
    doorbell: OutboxDoorbell,
) -> None:
    """Telegram upgraded a group to a supergroup (new id): told in the old chat
    (migrate_to_chat_id) and in the new one (migrate_from_chat_id)."""
    if message.migrate_to_chat_id is not None:
        old, new = message.chat.id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id is not None:
        old, new = message.migrate_from_chat_id, message.chat.id
    else:
        return
    if await follow_chat_migration(session, app, translator, old, new, app.clock()):
        await session.commit()
        doorbell.ring()


async def group_member_changed(
    event: ChatMemberUpdated, app: AppContext, moderators: ModeratorDirectory
) -> None:
    """A promotion or demotion in the moderation group: its administrators are asked again."""
    moderators.forget(event.chat.id)


def build_router() -> Router:
    r = Router(name="moderation")
    r.callback_query.register(on_idea_action, IdeaAction.filter())
    r.callback_query.register(on_comment_action, CommentAction.filter())
    r.callback_query.register(on_pending_action, PendingAction.filter())
    r.message.register(pending, Command("pending"), PrivateChat())
    r.chat_member.register(group_member_changed)
    r.message.register(on_chat_migrated, GroupMigrated())
    return r
