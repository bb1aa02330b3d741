"""Posting an idea: project, title, text, preview with similar ideas, confirmation."""

from __future__ import annotations

from html import escape
from typing import Any

from aiogram.enums import ContentType
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, ShowMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Cancel, Column, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.context import AppContext
from bot.ideas.service import (
    TEXT_MAX,
    TITLE_MAX,
    IdeaService,
    Quota,
    TextProblem,
    check_text,
    parse_id,
)
from bot.text_budget import clip_html
from bot.ui.states import SubmitIdea
from bot.ui.widgets import Choices, T, tell


def _ctx(manager: DialogManager) -> tuple[AppContext, IdeaService]:
    data = manager.middleware_data
    return data["app"], IdeaService(data["session"], data["app"])


async def _guard(event: CallbackQuery | Message, manager: DialogManager) -> bool:
    app, service = _ctx(manager)
    if service.is_open() and manager.middleware_data.get("member") is not None:
        return True
    text = app.translator.gettext("La phase des idées est close : on ne peut plus proposer d’idée.")
    await tell(event, text)
    await manager.done()
    return False


async def on_start(start_data: Any, manager: DialogManager) -> None:
    _app, service = _ctx(manager)
    project = start_data.get("project") if isinstance(start_data, dict) else None
    if project and service.project(project):
        manager.dialog_data["project"] = project
        await manager.switch_to(SubmitIdea.title)


async def projects_getter(
    dialog_manager: DialogManager, app: AppContext, lang: str, **_: Any
) -> dict[str, Any]:
    _app, service = _ctx(dialog_manager)
    return {"projects": [(p.id, app.consultation.text(p.title, lang)) for p in service.projects()]}


async def on_project(
    callback: CallbackQuery, _: Any, manager: DialogManager, project_id: str
) -> None:
    _app, service = _ctx(manager)
    if not await _guard(callback, manager):
        return
    if service.project(project_id) is None:
        await callback.answer()
        return
    manager.dialog_data["project"] = project_id
    await manager.switch_to(SubmitIdea.title)


def _problem_text(app: AppContext, problem: TextProblem, value: str, limit: int) -> str:
    _ = app.translator.gettext
    if problem == TextProblem.EMPTY:
        return _("Ce message est vide : écrivez du texte, s’il vous plaît.")
    return _(
        "C’est trop long : {n} caractères pour {max} au plus. Raccourcissez et envoyez à nouveau "
        "(votre brouillon est gardé)."
    ).format(n=len(value.strip()), max=limit)


async def on_title(message: Message, _: MessageInput, manager: DialogManager) -> None:
    await _take(message, manager, "title", TITLE_MAX)


async def on_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    await _take(message, manager, "text", TEXT_MAX)


async def _take(message: Message, manager: DialogManager, field: str, limit: int) -> None:
    manager.show_mode = ShowMode.SEND
    if not await _guard(message, manager):
        return
    app, _service = _ctx(manager)
    value = message.text or ""
    problem = check_text(value, limit)
    if problem is not None:
        await message.answer(_problem_text(app, problem, value, limit))
        return
    manager.dialog_data[field] = value.strip()
    if field == "title" and "text" not in manager.dialog_data:
        await manager.switch_to(SubmitIdea.text)
    else:
        await manager.switch_to(SubmitIdea.preview)


async def on_not_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    app, _service = _ctx(manager)
    await message.answer(
        app.translator.gettext("Seul du texte est accepté ici : écrivez votre idée avec des mots.")
    )
    manager.show_mode = ShowMode.SEND


async def preview_getter(
    dialog_manager: DialogManager, app: AppContext, lang: str, **_: Any
) -> dict[str, Any]:
    _app, service = _ctx(dialog_manager)
    data = dialog_manager.dialog_data
    project = service.project(data.get("project", ""))
    similar = (
        await service.similar(project.id, data.get("title", ""), data.get("text", ""))
        if project
        else []
    )
    return {
        "project": escape(app.consultation.text(project.title, lang)) if project else "",
        "title": clip_html(data.get("title", ""), 300),
        "text": clip_html(data.get("text", ""), 3000),
        "similar": [(i.id, f"👍 {i.title[:40]}") for i in similar],
        "has_similar": bool(similar),
    }


async def on_support_instead(
    callback: CallbackQuery, _: Any, manager: DialogManager, idea_id: str
) -> None:
    if not await _guard(callback, manager):
        return
    app, service = _ctx(manager)
    number = parse_id(idea_id)
    idea = await service.repo.get(number) if number else None
    if idea is None or idea.status != "approved":
        await callback.answer()
        return
    await service.set_support(manager.middleware_data["member"], idea.id, True)
    await callback.answer(
        app.translator.gettext("Merci ! Vous soutenez « {title} ».").format(title=idea.title)[:200],
        show_alert=True,
    )
    await manager.done()


async def on_confirm(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    if not await _guard(callback, manager):
        return
    app, service = _ctx(manager)
    data = manager.dialog_data
    if (
        service.project(data.get("project", "")) is None
        or not data.get("title")
        or not data.get("text")
    ):
        await callback.answer()
        await manager.switch_to(SubmitIdea.project)
        return
    if not await service.within_quota(manager.middleware_data["member"], Quota.IDEAS):
        await callback.answer(service.quota_text(Quota.IDEAS), show_alert=True)
        return
    idea = await service.submit(
        manager.middleware_data["member"], data["project"], data["title"], data["text"]
    )
    await callback.answer(
        app.translator.gettext(
            "Merci ! Votre idée n° {id} est en attente de modération. Vous serez prévenu de la décision."
        ).format(id=idea.id),
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
            MessageInput(on_title, content_types=[ContentType.TEXT]),
            MessageInput(on_not_text, content_types=[ContentType.ANY]),
            Cancel(T("Annuler")),
            state=SubmitIdea.title,
        ),
        Window(
            T("Décrivez maintenant votre idée (2 000 caractères au plus)."),
            MessageInput(on_text, content_types=[ContentType.TEXT]),
            MessageInput(on_not_text, content_types=[ContentType.ANY]),
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
