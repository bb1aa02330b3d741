"""A member's own ideas with their status; a pending one can be withdrawn."""

from __future__ import annotations

from html import escape
from typing import Any

from aiogram.types import CallbackQuery
from aiogram_dialog import Dialog, DialogManager, Window
from aiogram_dialog.widgets.kbd import Button, Cancel, Column, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.context import AppContext
from bot.i18n import N_, Translator
from bot.ideas.browse_state import IdeasStart
from bot.ideas.cards import REASONS
from bot.ideas.rules import idea_link, parse_id
from bot.services import UpdateServices
from bot.text_budget import clip_html
from bot.ui.deps import member_of, services_of, translator_of
from bot.ui.dialog_data import DialogRecord, Entry
from bot.ui.states import Ideas, MyIdeas
from bot.ui.widgets import Choices, T
from storage.models import Idea
from storage.repositories.members import MemberRecord

STATUS = {
    "pending": ("⏳", N_("en attente de modération")),
    "approved": ("✅", N_("approuvée")),
    "rejected": ("❌", N_("non retenue")),
    "withdrawn": ("↩️", N_("retirée")),
    "hidden": ("🙈", N_("retirée par les modérateurs")),
}


class MyIdeasData(DialogRecord):
    idea = Entry[int]("idea", 0)  # the idea shown in detail


async def list_getter(
    app: AppContext, services: UpdateServices, member: MemberRecord | None = None, **_: Any
) -> dict[str, Any]:
    ideas = await services.ideas.repo.by_author(app.consultation.id, member.id) if member else []
    return {
        "ideas": [(i.id, f"{STATUS.get(i.status, ('•', ''))[0]} {i.title[:50]}") for i in ideas],
        "none": not ideas,
    }


async def on_pick(callback: CallbackQuery, _: Any, manager: DialogManager, idea_id: str) -> None:
    number = parse_id(idea_id)
    if number is None:
        await callback.answer()
        return
    MyIdeasData.of(manager).idea = number
    await manager.switch_to(MyIdeas.detail)


async def _mine(manager: DialogManager) -> Idea | None:
    member = member_of(manager)
    idea = await services_of(manager).ideas.repo.get(MyIdeasData.of(manager).idea)
    return idea if idea is not None and member is not None and idea.author_id == member.id else None


async def detail_getter(
    dialog_manager: DialogManager,
    app: AppContext,
    lang: str,
    translator: Translator,
    services: UpdateServices,
    **kwargs: Any,
) -> dict[str, Any]:
    _ = translator.gettext
    idea = await _mine(dialog_manager)
    if idea is None:
        return {"body": _("Cette idée n’est pas (ou plus) disponible."), "pending": False}
    icon, label = STATUS.get(idea.status, ("•", ""))
    project = services.ideas.project(idea.project_id)
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
            translator.ngettext("👍 {n} soutien", "👍 {n} soutiens", idea.supports).format(
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
    idea = await _mine(manager)
    member = member_of(manager)
    done = (
        idea is not None
        and member is not None
        and await services_of(manager).ideas.withdraw(member, idea.id)
    )
    translator = translator_of(manager)
    await callback.answer(
        translator.gettext("Idée retirée.")
        if done
        else translator.gettext(
            "Cette idée n’est plus en attente : elle ne peut plus être retirée."
        ),
        show_alert=not done,
    )


async def on_open(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    idea = await _mine(manager)
    if idea is None or idea.status != "approved":  # the button is hidden otherwise
        await callback.answer(
            translator_of(manager).gettext("Cette idée n’est pas (ou plus) disponible.")
        )
        return
    await manager.start(Ideas.idea, data=IdeasStart(idea.id).dump())


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
