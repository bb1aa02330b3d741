"""Posting an idea: project, title, text, preview with similar ideas, confirmation."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from aiogram.enums import ContentType
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, ShowMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Cancel, Column, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.context import AppContext
from bot.i18n import Translator
from bot.ideas.rules import (
    TEXT_MAX,
    TITLE_MAX,
    Quota,
    TextProblem,
    check_text,
    parse_id,
)
from bot.services import UpdateServices
from bot.text_budget import clip_html
from bot.ui.deps import member_of, services_of, translator_of
from bot.ui.dialog_data import DialogRecord, Entry, StartRecord
from bot.ui.states import SubmitIdea
from bot.ui.widgets import Choices, T, TextInput, tell
from storage.repositories.members import MemberRecord


class DraftData(DialogRecord):
    """The idea being written."""

    project = Entry[str | None]("project", None)
    title = Entry[str | None]("title", None)
    text = Entry[str | None]("text", None)


@dataclass(frozen=True)
class SubmitStart(StartRecord):
    """Start data: the project already chosen (proposing from a project's list)."""

    project: str | None = None


async def _guard(event: CallbackQuery | Message, manager: DialogManager) -> MemberRecord | None:
    """The member, while the ideas phase is open; else None (they are told, the dialog ends)."""
    member = member_of(manager)
    if services_of(manager).ideas.is_open() and member is not None:
        return member
    text = translator_of(manager).gettext(
        "La phase des idées est close : on ne peut plus proposer d’idée."
    )
    await tell(event, text)
    await manager.done()
    return None


async def on_start(start_data: Any, manager: DialogManager) -> None:
    project = SubmitStart.load(start_data).project
    if project and services_of(manager).ideas.project(project):
        DraftData.of(manager).project = project
        await manager.switch_to(SubmitIdea.title)


async def projects_getter(
    app: AppContext, lang: str, services: UpdateServices, **_: Any
) -> dict[str, Any]:
    projects = services.ideas.projects()
    return {"projects": [(p.id, app.consultation.text(p.title, lang)) for p in projects]}


async def on_project(
    callback: CallbackQuery, _: Any, manager: DialogManager, project_id: str
) -> None:
    if await _guard(callback, manager) is None:
        return
    if services_of(manager).ideas.project(project_id) is None:
        await callback.answer()
        return
    DraftData.of(manager).project = project_id
    await manager.switch_to(SubmitIdea.title)


def _problem_text(translator: Translator, problem: TextProblem, value: str, limit: int) -> str:
    _ = translator.gettext
    if problem == TextProblem.EMPTY:
        return _("Ce message est vide : écrivez du texte, s’il vous plaît.")
    return _(
        "C’est trop long : {n} caractères pour {max} au plus. Raccourcissez et envoyez à nouveau "
        "(votre brouillon est gardé)."
    ).format(n=len(value.strip()), max=limit)


async def on_title(message: Message, _: MessageInput, manager: DialogManager) -> None:
    if await _take(message, manager, TITLE_MAX):
        data = DraftData.of(manager)
        data.title = (message.text or "").strip()
        await manager.switch_to(SubmitIdea.text if data.text is None else SubmitIdea.preview)


async def on_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    if await _take(message, manager, TEXT_MAX):
        DraftData.of(manager).text = (message.text or "").strip()
        await manager.switch_to(SubmitIdea.preview)


async def _take(message: Message, manager: DialogManager, limit: int) -> bool:
    """Whether the message is a title or text to keep (else the member is told why not)."""
    manager.show_mode = ShowMode.SEND
    if await _guard(message, manager) is None:
        return False
    value = message.text or ""
    problem = check_text(value, limit)
    if problem is not None:
        await message.answer(_problem_text(translator_of(manager), problem, value, limit))
        return False
    return True


async def on_not_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    await message.answer(
        translator_of(manager).gettext(
            "Seul du texte est accepté ici : écrivez votre idée avec des mots."
        )
    )
    manager.show_mode = ShowMode.SEND


async def preview_getter(
    dialog_manager: DialogManager,
    app: AppContext,
    lang: str,
    services: UpdateServices,
    **_: Any,
) -> dict[str, Any]:
    ideas = services.ideas
    data = DraftData.of(dialog_manager)
    title, text = data.title or "", data.text or ""
    project = ideas.project(data.project or "")
    similar = await ideas.similar(project.id, title, text) if project else []
    return {
        "project": escape(app.consultation.text(project.title, lang)) if project else "",
        "title": clip_html(title, 300),
        "text": clip_html(text, 3000),
        "similar": [(i.id, f"👍 {i.title[:40]}") for i in similar],
        "has_similar": bool(similar),
    }


async def on_support_instead(
    callback: CallbackQuery, _: Any, manager: DialogManager, idea_id: str
) -> None:
    member = await _guard(callback, manager)
    if member is None:
        return
    ideas = services_of(manager).ideas
    number = parse_id(idea_id)
    idea = await ideas.repo.get(number) if number else None
    if idea is None or idea.status != "approved":
        await callback.answer()
        return
    await ideas.set_support(member, idea.id, True)
    await callback.answer(
        translator_of(manager)
        .gettext("Merci ! Vous soutenez « {title} ».")
        .format(title=idea.title)[:200],
        show_alert=True,
    )
    await manager.done()


async def on_confirm(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    member = await _guard(callback, manager)
    if member is None:
        return
    ideas = services_of(manager).ideas
    data = DraftData.of(manager)
    project, title, text = data.project, data.title, data.text
    if project is None or ideas.project(project) is None or not title or not text:
        await callback.answer()
        await manager.switch_to(SubmitIdea.project)
        return
    if not await ideas.within_quota(member, Quota.IDEAS):
        await callback.answer(ideas.quota_text(Quota.IDEAS), show_alert=True)
        return
    idea = await ideas.submit(member, project, title, text)
    await callback.answer(
        translator_of(manager)
        .gettext(
            "Merci ! Votre idée n° {id} est en attente de modération. Vous serez prévenu de la décision."
        )
        .format(id=idea.id),
        show_alert=True,
    )
    await manager.done()


def submit_idea_dialog() -> Dialog:
    """A fresh dialog: a router can belong to one dispatcher only."""
    return Dialog(
        Window(
            T("✍️ <b>Nouvelle idée</b>\nPour quel projet ?"),
            Column(Choices("p", "projects", on_project)),
            Cancel(T("Annuler")),
            state=SubmitIdea.project,
            getter=projects_getter,
        ),
        Window(
            T("Donnez un titre court à votre idée (100 caractères au plus)."),
            *TextInput(on_title, on_not_text),
            Cancel(T("Annuler")),
            state=SubmitIdea.title,
        ),
        Window(
            T("Décrivez maintenant votre idée (2 000 caractères au plus)."),
            *TextInput(on_text, on_not_text),
            Cancel(T("Annuler")),
            state=SubmitIdea.text,
        ),
        Window(
            T("<b>Aperçu</b> — {project}"),
            Format("\n<b>{title}</b>\n{text}\n"),
            T(
                "Des idées proches existent déjà : vous pouvez plutôt soutenir l’une d’elles.",
                when="has_similar",
            ),
            Column(
                Choices("s", "similar", on_support_instead),
                when="has_similar",
            ),
            Button(T("✅ Envoyer aux modérateurs"), id="ok", on_click=on_confirm),
            SwitchTo(T("✏️ Modifier le titre"), id="edit_title", state=SubmitIdea.title),
            SwitchTo(T("✏️ Modifier le texte"), id="edit_text", state=SubmitIdea.text),
            Cancel(T("Annuler")),
            MessageInput(on_not_text, content_types=[ContentType.ANY]),
            state=SubmitIdea.preview,
            getter=preview_getter,
        ),
        on_start=on_start,
    )
