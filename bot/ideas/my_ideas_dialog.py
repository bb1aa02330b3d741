"""A member's own ideas with their status; a pending one can be withdrawn."""

from __future__ import annotations

from html import escape
from typing import Any

from aiogram.types import CallbackQuery
from aiogram_dialog import Dialog, DialogManager, Window
from aiogram_dialog.widgets.kbd import Button, Cancel, Column, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.context import AppContext
from bot.i18n import N_
from bot.ideas.cards import REASONS
from bot.ideas.service import IdeaService, idea_link, parse_id
from bot.text_budget import clip_html
from bot.ui.states import Ideas, MyIdeas
from bot.ui.widgets import Choices, T
from storage.models import Idea

STATUS = {
    "pending": ("⏳", N_("en attente de modération")),
    "approved": ("✅", N_("approuvée")),
    "rejected": ("❌", N_("non retenue")),
    "withdrawn": ("↩️", N_("retirée")),
    "hidden": ("🙈", N_("retirée par les modérateurs")),
}


def _service(manager: DialogManager) -> IdeaService:
    return IdeaService(manager.middleware_data["session"], manager.middleware_data["app"])


async def list_getter(dialog_manager: DialogManager, app: AppContext, **_: Any) -> dict[str, Any]:
    member = dialog_manager.middleware_data.get("member")
    ideas = (
        await _service(dialog_manager).repo.by_author(app.consultation.id, member.id)
        if member
        else []
    )
    return {
        "ideas": [(i.id, f"{STATUS.get(i.status, ('•', ''))[0]} {i.title[:50]}") for i in ideas],
        "none": not ideas,
    }


async def on_pick(callback: CallbackQuery, _: Any, manager: DialogManager, idea_id: str) -> None:
    number = parse_id(idea_id)
    if number is None:
        await callback.answer()
        return
    manager.dialog_data["idea"] = number
    await manager.switch_to(MyIdeas.detail)


async def _mine(manager: DialogManager) -> Idea | None:
    member = manager.middleware_data.get("member")
    idea = await _service(manager).repo.get(int(manager.dialog_data.get("idea", 0)))
    return idea if idea is not None and member is not None and idea.author_id == member.id else None


async def detail_getter(
    dialog_manager: DialogManager, app: AppContext, lang: str, **kwargs: Any
) -> dict[str, Any]:
    _ = app.translator.gettext
    idea = await _mine(dialog_manager)
    if idea is None:
        return {"body": _("Cette idée n’est pas (ou plus) disponible."), "pending": False}
    icon, label = STATUS.get(idea.status, ("•", ""))
    service = _service(dialog_manager)
    project = service.project(idea.project_id)
    lines = [
        f"<b>{clip_html(idea.title, 200)}</b>",
        f"<i>{escape(app.consultation.text(project.title, lang)) if project else ''}</i>",
        "",
        clip_html(idea.text, 3000),
        "",
        _("Statut : {icon} {label}").format(icon=icon, label=_(label)),
    ]
    if idea.status == "rejected":
        lines.append(
            _("Raison : {reason}").format(
                reason=_(REASONS.get(idea.reject_reason or "", REASONS["other"]))
            )
        )
    if idea.status == "approved":
        lines.append(
            app.translator.ngettext("👍 {n} soutien", "👍 {n} soutiens", idea.supports).format(
                n=idea.supports
            )
        )
        lines.append(idea_link(app, idea.id))
    return {
        "body": "\n".join(lines),
        "pending": idea.status == "pending",
        "approved": idea.status == "approved",
    }


async def on_withdraw(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    app: AppContext = manager.middleware_data["app"]
    idea = await _mine(manager)
    member = manager.middleware_data.get("member")
    done = (
        idea is not None
        and member is not None
        and await _service(manager).withdraw(member, idea.id)
    )
    await callback.answer(
        app.translator.gettext("Idée retirée.")
        if done
        else app.translator.gettext(
            "Cette idée n’est plus en attente : elle ne peut plus être retirée."
        ),
        show_alert=not done,
    )


async def on_open(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    idea = await _mine(manager)
    if idea is None or idea.status != "approved":  # the button is hidden otherwise
        app: AppContext = manager.middleware_data["app"]
        await callback.answer(app.translator.gettext("Cette idée n’est pas (ou plus) disponible."))
        return
    await manager.start(Ideas.idea, data={"idea": idea.id})


def my_ideas_dialog() -> Dialog:
    """A fresh dialog: a router can belong to one dispatcher only."""
    return Dialog(
        Window(
            T("📂 <b>Mes idées</b>"),
            T("Vous n’avez encore proposé aucune idée.", when="none"),
            Column(Choices("m", "ideas", on_pick)),
            Cancel(T("◀️ Retour")),
            state=MyIdeas.ideas,
            getter=list_getter,
        ),
        Window(
            Format("{body}"),
            Button(T("↩️ Retirer cette idée"), id="wd", on_click=on_withdraw, when="pending"),
            Button(T("💬 Voir les commentaires"), id="open", on_click=on_open, when="approved"),
            SwitchTo(T("◀️ Mes idées"), id="list", state=MyIdeas.ideas),
            state=MyIdeas.detail,
            getter=detail_getter,
        ),
    )
