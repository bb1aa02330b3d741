"""The idea screen's steps: comment, reply to a comment, report the idea or a comment."""

from __future__ import annotations

from html import escape
from typing import Any

from aiogram.types import CallbackQuery, Message
from aiogram_dialog import DialogManager, ShowMode
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button

from bot.ideas.browse_state import BrowseData, closed, current_idea, page_comments
from bot.ideas.rules import (
    COMMENT_MAX,
    Quota,
    TextProblem,
    check_text,
    parse_id,
)
from bot.ui.deps import member_of, services_of, translator_of
from bot.ui.states import Ideas
from storage.models import Comment


async def may_comment(callback: CallbackQuery, manager: DialogManager) -> bool:
    """What the hidden Comment/Reply buttons stand for, checked again on a (forged) press."""
    if await closed(callback, manager):
        return False
    ideas = services_of(manager).ideas
    idea = await current_idea(manager)
    member = member_of(manager)
    if idea is None or member is None or idea.status != "approved":
        await callback.answer(
            translator_of(manager).gettext("Cette idée n’est pas (ou plus) disponible.")
        )
        return False
    if not await ideas.within_quota(member, Quota.COMMENTS):
        await callback.answer(ideas.quota_text(Quota.COMMENTS), show_alert=True)
        return False
    return True


async def on_comment_start(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    if not await may_comment(callback, manager):
        return
    BrowseData.of(manager).parent = None
    await manager.switch_to(Ideas.comment)


async def on_reply_start(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    if not await may_comment(callback, manager):
        return
    await manager.switch_to(Ideas.reply_pick)


async def on_report_start(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    ideas = services_of(manager).ideas
    member = member_of(manager)
    if await current_idea(manager) is None or member is None:
        await callback.answer(
            translator_of(manager).gettext("Cette idée n’est pas (ou plus) disponible.")
        )
        return
    if not await ideas.within_quota(member, Quota.REPORTS):
        await callback.answer(ideas.quota_text(Quota.REPORTS), show_alert=True)
        return
    await manager.switch_to(Ideas.report_pick)


def _name(comment: Comment) -> str:
    if comment.erased_at is not None or not comment.author_name:
        return "—"
    return comment.author_name[:20]


async def reply_getter(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    shown, _page, _count, _total = await page_comments(dialog_manager)
    return {
        "targets": [(c.id, f"{n}. {_name(c)}") for n, c, _ in shown if c.parent_id is None],
        "all_targets": [(c.id, f"{n}. {_name(c)}") for n, c, _ in shown],
    }


async def on_reply_target(
    callback: CallbackQuery, _: Any, manager: DialogManager, comment_id: str
) -> None:
    if await closed(callback, manager):
        return
    number = parse_id(comment_id)
    data = BrowseData.of(manager)
    comment = await services_of(manager).ideas.repo.comment(number) if number else None
    if comment is None or comment.hidden or comment.idea_id != data.idea:
        await callback.answer()
        return
    data.parent, data.parent_name = comment.id, comment.author_name
    await manager.switch_to(Ideas.comment)


async def comment_getter(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    data = BrowseData.of(dialog_manager)
    return {
        "reply": data.parent is not None,
        "new": data.parent is None,
        "name": escape(data.parent_name or ""),
        "max": COMMENT_MAX,
    }


async def on_comment_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    if await closed(message, manager):
        manager.show_mode = ShowMode.SEND
        await manager.switch_to(Ideas.idea)
        return
    translator = translator_of(manager)
    ideas = services_of(manager).ideas
    problem = check_text(message.text, COMMENT_MAX)
    if problem is not None:
        await message.answer(
            translator.gettext("Votre commentaire est vide.")
            if problem == TextProblem.EMPTY
            else translator.gettext(
                "Votre commentaire fait {n} caractères : {max} au plus, s’il vous plaît. Raccourcissez-le et envoyez-le à nouveau."
            ).format(n=len((message.text or "").strip()), max=COMMENT_MAX)
        )
        manager.show_mode = ShowMode.SEND
        return
    idea = await current_idea(manager)
    member = member_of(manager)
    if idea is None or member is None or idea.status != "approved":
        await message.answer(translator.gettext("Cette idée n’est pas (ou plus) disponible."))
        manager.show_mode = ShowMode.SEND
        await manager.switch_to(Ideas.idea)
        return
    if not await ideas.within_quota(member, Quota.COMMENTS):
        await message.answer(ideas.quota_text(Quota.COMMENTS))
        manager.show_mode = ShowMode.SEND
        await manager.switch_to(Ideas.idea)
        return
    parent_id = BrowseData.of(manager).parent
    parent = await ideas.repo.comment(parent_id) if parent_id else None
    if parent is not None and (parent.idea_id != idea.id or parent.parent_id is not None):
        parent = None
    await ideas.comment(member, idea, message.text or "", parent)
    await message.answer(translator.gettext("💬 Commentaire publié."))
    manager.show_mode = ShowMode.SEND
    await manager.switch_to(Ideas.idea)


async def on_report_idea(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    await _report(callback, manager, None)


async def on_report_comment(
    callback: CallbackQuery, _: Any, manager: DialogManager, comment_id: str
) -> None:
    number = parse_id(comment_id)
    if number is None:
        await callback.answer()
        return
    await _report(callback, manager, number)


async def _report(callback: CallbackQuery, manager: DialogManager, comment_id: int | None) -> None:
    ideas = services_of(manager).ideas
    idea = await current_idea(manager)
    member = member_of(manager)
    comment = await ideas.repo.comment(comment_id) if comment_id else None
    if (
        idea is None
        or member is None
        or (comment_id and (comment is None or comment.idea_id != idea.id))
    ):
        await callback.answer()
        return
    if not await ideas.within_quota(member, Quota.REPORTS):
        await callback.answer(ideas.quota_text(Quota.REPORTS), show_alert=True)
        return
    new = await ideas.report(member, idea, comment)
    _ = translator_of(manager).gettext
    await callback.answer(
        _("Merci : les modérateurs vont examiner ce signalement.")
        if new
        else _("Vous l’avez déjà signalé : merci."),
        show_alert=True,
    )
    await manager.switch_to(Ideas.idea)
