"""Browsing ideas: projects, approved ideas (newest or most supported), an idea with its
comments and support (comment, reply and report: comment_steps.py)."""

from __future__ import annotations

from html import escape
from typing import Any

from aiogram.enums import ContentType
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Column, Group, Row, Start, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.consultation import PhaseKind
from bot.context import AppContext
from bot.i18n import Translator
from bot.ideas.browse_state import (
    IDEA_TEXT_SHOWN,
    PAGE,
    BrowseData,
    IdeasStart,
    closed,
    current_idea,
    page_comments,
)
from bot.ideas.cards import commune_mark, idea_title_html
from bot.ideas.comment_steps import (
    comment_getter,
    on_comment_start,
    on_comment_text,
    on_reply_start,
    on_reply_target,
    on_report_comment,
    on_report_idea,
    on_report_start,
    reply_getter,
)
from bot.ideas.rules import (
    Quota,
    idea_link,
    parse_id,
)
from bot.ideas.submit_dialog import SubmitStart
from bot.services import UpdateServices
from bot.text_budget import clip_html, fit
from bot.ui.deps import member_of, services_of, translator_of
from bot.ui.states import Ideas, MainMenu, MyIdeas, SubmitIdea
from bot.ui.widgets import Choices, T, TextInput
from storage.models import Idea
from storage.repositories.members import MemberRecord


async def on_start(start_data: Any, manager: DialogManager) -> None:
    start = IdeasStart.load(start_data)
    if start.idea is not None:
        BrowseData.of(manager).idea = parse_id(start.idea) or 0


async def projects_getter(
    app: AppContext, lang: str, services: UpdateServices, **_: Any
) -> dict[str, Any]:
    c = app.consultation
    phase = c.phase(PhaseKind.IDEAS)
    ideas = services.ideas
    return {
        "title": escape(c.text(phase.title, lang)) if phase else "",
        "description": escape(c.text(phase.description, lang)) if phase else "",
        "projects": [(p.id, c.text(p.title, lang)) for p in ideas.projects()],
        "open": ideas.is_open(),
    }


async def on_project(
    callback: CallbackQuery, _: Any, manager: DialogManager, project_id: str
) -> None:
    if services_of(manager).ideas.project(project_id) is None:
        await callback.answer()
        return
    data = BrowseData.of(manager)
    data.project, data.page = project_id, 0
    await manager.switch_to(Ideas.project)


async def _member_commune(services: UpdateServices, member: MemberRecord | None) -> str | None:
    """The member's commune, if they gave one the consultation lists."""
    if member is None or not services.communes.offered():
        return None
    commune = (await services.communes.of_member(member.id)).commune
    return commune if services.communes.directory.get(commune) else None


async def project_getter(
    dialog_manager: DialogManager,
    app: AppContext,
    lang: str,
    translator: Translator,
    services: UpdateServices,
    member: MemberRecord | None = None,
    **_: Any,
) -> dict[str, Any]:
    ideas = services.ideas
    data = BrowseData.of(dialog_manager)
    project = ideas.project(data.project or "") or ideas.projects()[0]
    by_support = data.sort == "top"
    page = data.page
    # "My commune / the whole network": offered to a member who gave a commune of the file.
    commune = await _member_commune(services, member)
    only = commune if commune and data.mine else None
    listed, total = await ideas.repo.approved(
        app.consultation.id, project.id, by_support, page * PAGE, PAGE, only
    )
    name = escape(app.communes.name_of(commune, lang) or "")
    return {
        "scope": translator.gettext("📍 Idées de la commune : {commune}.").format(commune=name)
        if only
        else "",
        "to_mine": translator.gettext("📍 {commune} seulement").format(commune=name)
        if commune and not only
        else "",
        "to_all": bool(only),
        "project": escape(app.consultation.text(project.title, lang)),
        "description": escape(app.consultation.text(project.description, lang)),
        "count": translator.ngettext("{n} idée approuvée", "{n} idées approuvées", total).format(
            n=total
        ),
        "ideas": [(i.id, f"💡 {_label(translator, i)} · 👍 {i.supports}") for i in listed],
        "has_prev": page > 0,
        "has_next": (page + 1) * PAGE < total,
        "by_new": not by_support,
        "by_top": by_support,
        "open": ideas.is_open(),
        "empty": total == 0,
    }


async def on_page(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    data = BrowseData.of(manager)
    step = 1 if button.widget_id.endswith("next") else -1
    if button.widget_id.startswith("c"):
        data.comments_page = max(0, data.comments_page + step)
    else:
        data.page = max(0, data.page + step)


async def on_sort(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    data = BrowseData.of(manager)
    data.sort = "new" if data.sort == "top" else "top"
    data.page = 0


async def on_scope(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    # A stale "my commune" press from a member who has none since: the getter lists all.
    data = BrowseData.of(manager)
    data.mine, data.page = button.widget_id == "mine", 0


def _label(translator: Translator, idea: Idea) -> str:
    if idea.erased_at is not None or not idea.title:
        return translator.gettext("(idée effacée par son auteur)")
    return idea.title[:48]


async def on_idea(callback: CallbackQuery, _: Any, manager: DialogManager, idea_id: str) -> None:
    number = parse_id(idea_id)
    if number is None:
        await callback.answer()
        return
    data = BrowseData.of(manager)
    data.idea, data.comments_page = number, 0
    await manager.switch_to(Ideas.idea)


async def idea_getter(
    dialog_manager: DialogManager,
    app: AppContext,
    lang: str,
    translator: Translator,
    services: UpdateServices,
    member: MemberRecord | None = None,
    **_: Any,
) -> dict[str, Any]:
    ideas = services.ideas
    idea = await current_idea(dialog_manager)
    if idea is None:
        return {
            "missing": True,
            "body": translator.gettext("Cette idée n’est pas (ou plus) disponible."),
            "present": False,
            "open": False,
            "supported": False,
            "unsupported": False,
            "has_comments": False,
            "c_prev": False,
            "c_next": False,
        }
    supported = member is not None and await ideas.repo.has_support(idea.id, member.id)
    shown, page, page_count, total = await page_comments(dialog_manager)
    project = ideas.project(idea.project_id)
    text = (
        translator.gettext("🗑 Contenu effacé à la demande de son auteur.")
        if idea.erased_at is not None
        else clip_html(idea.text, IDEA_TEXT_SHOWN)
    )
    lines = [
        f"💡 <b>{idea_title_html(translator, idea, lang, 200)}</b>",
        f"<i>{escape(app.consultation.text(project.title, lang)) if project else ''}</i>",
        "",
        text,
        "",
        translator.gettext("— {name} · 👍 {n}").format(
            name=clip_html(idea.author_name or "—", 40), n=idea.supports
        )
        + commune_mark(app, idea, lang, " · "),
    ]
    if idea.status != "approved":
        lines.append(
            translator.gettext(
                "<i>(pas encore publiée : en attente de modération ou non retenue)</i>"
            )
        )
    lines.append("")
    lines.append(
        translator.ngettext("💬 {n} commentaire", "💬 {n} commentaires", total).format(n=total)
    )
    lines.extend(line for _n, _c, line in shown)
    if page_count > 1:
        lines.append(f"({page + 1} / {page_count})")
    lines.append("")
    lines.append(idea_link(app, idea.id))
    open_ = ideas.is_open() and idea.status == "approved"
    result = {
        "missing": False,
        "present": True,
        "body": "\n".join(lines),
        "open": open_,
        "supported": open_ and supported,
        "unsupported": open_ and not supported,
        "has_comments": open_ and bool(shown),
        "c_prev": page > 0,
        "c_next": page + 1 < page_count,
    }
    result["body"] = fit(str(result["body"]))  # by construction already within the budget
    return result


async def on_support(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    if await closed(callback, manager):
        return
    _ = translator_of(manager).gettext
    idea = await current_idea(manager)
    member = member_of(manager)
    if idea is None or member is None or idea.status != "approved":
        await callback.answer(_("Cette idée n’est pas (ou plus) disponible."))
        return
    on = button.widget_id == "sup"
    changed = await services_of(manager).ideas.set_support(member, idea.id, on)
    if on:
        text = _("Merci pour votre soutien !") if changed else _("Vous soutenez déjà cette idée.")
    else:
        text = _("Soutien retiré.") if changed else _("Vous ne souteniez pas cette idée.")
    await callback.answer(text)


async def on_not_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    await message.answer(translator_of(manager).gettext("Envoyez du texte, s’il vous plaît."))
    manager.show_mode = ShowMode.SEND


async def on_idea_back(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    data = BrowseData.of(manager)
    if data.project is None:
        idea = await services_of(manager).ideas.repo.get(data.idea)
        if idea is None:
            await manager.switch_to(Ideas.projects)
            return
        data.project, data.page = idea.project_id, 0
    await manager.switch_to(Ideas.project)


async def on_propose(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    if await closed(callback, manager):
        return
    ideas = services_of(manager).ideas
    member = member_of(manager)
    if member is None:
        await callback.answer()
        return
    if not await ideas.within_quota(member, Quota.IDEAS):
        await callback.answer(ideas.quota_text(Quota.IDEAS), show_alert=True)
        return
    project = (
        BrowseData.of(manager).project if manager.current_context().state == Ideas.project else None
    )
    await manager.start(SubmitIdea.project, data=SubmitStart(project).dump() if project else None)


async def to_menu(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    await manager.start(MainMenu.menu, mode=StartMode.RESET_STACK)


def ideas_dialog() -> Dialog:
    """A fresh dialog: a router can belong to one dispatcher only."""
    return Dialog(
        Window(
            Format("💡 <b>{title}</b>\n\n{description}\n"),
            T("Choisissez un projet :"),
            Column(Choices("p", "projects", on_project)),
            Button(T("✍️ Proposer une idée"), id="new", on_click=on_propose, when="open"),
            Start(T("📂 Mes idées"), id="mine", state=MyIdeas.ideas),
            Button(T("🏠 Menu"), id="menu", on_click=to_menu),
            MessageInput(on_not_text, content_types=[ContentType.ANY]),
            state=Ideas.projects,
            getter=projects_getter,
        ),
        Window(
            Format("<b>{project}</b>\n{description}\n\n{count}"),
            T("Aucune idée approuvée pour l’instant : proposez la première !", when="empty"),
            T("Les plus récentes d’abord.", when="by_new"),
            T("Les plus soutenues d’abord.", when="by_top"),
            Column(Choices("i", "ideas", on_idea)),
            Row(
                Button(Format("◀️"), id="prev", on_click=on_page, when="has_prev"),
                Button(Format("▶️"), id="next", on_click=on_page, when="has_next"),
            ),
            Format("{scope}", when="scope"),
            Button(T("🔥 Les plus soutenues"), id="top", on_click=on_sort, when="by_new"),
            Button(T("🆕 Les plus récentes"), id="newest", on_click=on_sort, when="by_top"),
            Button(Format("{to_mine}"), id="mine", on_click=on_scope, when="to_mine"),
            Button(T("🌐 Tout le réseau"), id="all", on_click=on_scope, when="to_all"),
            Button(T("✍️ Proposer une idée ici"), id="new_here", on_click=on_propose, when="open"),
            SwitchTo(T("◀️ Projets"), id="to_projects", state=Ideas.projects),
            MessageInput(on_not_text, content_types=[ContentType.ANY]),
            state=Ideas.project,
            getter=project_getter,
        ),
        Window(
            Format("{body}"),
            Button(T("👍 Soutenir"), id="sup", on_click=on_support, when="unsupported"),
            Button(T("👎 Retirer mon soutien"), id="unsup", on_click=on_support, when="supported"),
            Row(
                Button(T("💬 Commenter"), id="com", on_click=on_comment_start, when="open"),
                Button(T("↩️ Répondre"), id="rep", on_click=on_reply_start, when="has_comments"),
            ),
            Row(
                Button(Format("◀️ 💬"), id="cprev", on_click=on_page, when="c_prev"),
                Button(Format("💬 ▶️"), id="cnext", on_click=on_page, when="c_next"),
            ),
            Button(T("⚠️ Signaler"), id="rpt", on_click=on_report_start, when="present"),
            Button(T("◀️ Retour"), id="back", on_click=on_idea_back),
            MessageInput(on_not_text, content_types=[ContentType.ANY]),
            state=Ideas.idea,
            getter=idea_getter,
        ),
        Window(
            T("💬 Écrivez votre commentaire ({max} caractères au plus).", when="new"),
            T("↩️ Écrivez votre réponse à {name} ({max} caractères au plus).", when="reply"),
            *TextInput(on_comment_text, on_not_text),
            SwitchTo(T("Annuler"), id="cancel", state=Ideas.idea),
            state=Ideas.comment,
            getter=comment_getter,
        ),
        Window(
            T("À quel commentaire répondez-vous ?"),
            Group(
                Choices("rt", "targets", on_reply_target, label="↩️ {item[1]}"),
                width=2,
            ),
            SwitchTo(T("Annuler"), id="cancel", state=Ideas.idea),
            state=Ideas.reply_pick,
            getter=reply_getter,
        ),
        Window(
            T("Que voulez-vous signaler aux modérateurs ?"),
            Button(T("⚠️ L’idée elle-même"), id="ri", on_click=on_report_idea),
            Group(
                Choices("rc", "all_targets", on_report_comment, label="💬 {item[1]}"),
                width=2,
            ),
            SwitchTo(T("Annuler"), id="cancel", state=Ideas.idea),
            state=Ideas.report_pick,
            getter=reply_getter,
        ),
        on_start=on_start,
    )
