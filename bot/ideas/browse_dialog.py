"""Browsing ideas: projects, approved ideas (newest or most supported), an idea with its
comments; support, comment, reply, report."""

from __future__ import annotations

from dataclasses import dataclass
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
from bot.ideas.cards import comment_text_html, commune_mark, idea_title_html
from bot.ideas.service import (
    COMMENT_MAX,
    Quota,
    TextProblem,
    check_text,
    idea_link,
    parse_id,
)
from bot.ideas.submit_dialog import SubmitStart
from bot.services import UpdateServices
from bot.text_budget import clip_html, fit, pages
from bot.ui.deps import lang_of, member_of, services_of, translator_of
from bot.ui.dialog_data import DialogRecord, Entry, StartRecord
from bot.ui.states import Ideas, MainMenu, MyIdeas, SubmitIdea
from bot.ui.widgets import Choices, T, TextInput, tell
from storage.models import Comment, Idea
from storage.repositories.members import MemberRecord

PAGE = 5
# The idea screen: the idea itself is cut to leave this much for a page of comments, and a
# page holds what fits in it (at most PAGE comments, each cut to COMMENT_SHOWN).
IDEA_TEXT_SHOWN = 1800
COMMENTS_BUDGET = 1800
COMMENT_SHOWN = 700


class BrowseData(DialogRecord):
    """What the ideas dialog keeps between its screens."""

    project = Entry[str | None]("project", None)  # the project listed; None: opened on an idea
    page = Entry[int]("page", 0)  # of its ideas
    sort = Entry[str]("sort", "new")  # "new" | "top" (most supported first)
    mine = Entry[bool]("mine", False)  # only the ideas from the member's commune
    idea = Entry[int]("idea", 0)  # the idea on screen
    comments_page = Entry[int]("cpage", 0)  # of its comments
    parent = Entry[int | None]("parent", None)  # the comment being replied to, if any
    parent_name = Entry[str | None]("parent_name", None)  # its author


@dataclass(frozen=True)
class IdeasStart(StartRecord):
    """Start data: open the dialog on one idea (a shared link, a member's own idea)."""

    idea: int | None = None


async def _closed(event: CallbackQuery | Message, manager: DialogManager) -> bool:
    """True (after telling the member) when the ideas phase no longer allows this."""
    if services_of(manager).ideas.is_open():
        return False
    text = translator_of(manager).gettext(
        "La phase des idées est close : les idées restent lisibles, mais on ne peut plus "
        "en proposer, les soutenir ni les commenter."
    )
    await tell(event, text)
    return True


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


def _visible(idea: Idea | None, member_id: int | None) -> bool:
    return idea is not None and (idea.status == "approved" or idea.author_id == member_id)


async def _current_idea(manager: DialogManager) -> Idea | None:
    idea = await services_of(manager).ideas.repo.get(BrowseData.of(manager).idea)
    member = member_of(manager)
    return idea if _visible(idea, member.id if member else None) else None


def _comment_line(translator: Translator, comment: Comment, number: int, lang: str) -> str:
    indent = "    ↩️ " if comment.parent_id else ""
    name = clip_html(comment.author_name or "—", 40)
    text = comment_text_html(translator, comment, lang, COMMENT_SHOWN)
    line = translator.gettext("{number}. <b>{name}</b> : {text}", locale=lang)
    return indent + line.format(number=number, name=name, text=text)


async def _page_comments(
    manager: DialogManager,
) -> tuple[list[tuple[int, Comment, str]], int, int, int]:
    """The current page's (number, comment, line), the page, the page count and the total:
    pages hold what fits in COMMENTS_BUDGET, so long comments make shorter pages."""
    translator, lang = translator_of(manager), lang_of(manager)
    data = BrowseData.of(manager)
    comments = await services_of(manager).ideas.repo.threads(data.idea)
    lines = [_comment_line(translator, c, n, lang) for n, c in enumerate(comments, start=1)]
    ranges = pages([len(line) + 1 for line in lines], COMMENTS_BUDGET, PAGE)
    page = min(data.comments_page, len(ranges) - 1)
    start, end = ranges[page]
    shown = [(n + 1, comments[n], lines[n]) for n in range(start, end)]
    return shown, page, len(ranges), len(comments)


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
    idea = await _current_idea(dialog_manager)
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
    shown, page, page_count, total = await _page_comments(dialog_manager)
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
    if await _closed(callback, manager):
        return
    _ = translator_of(manager).gettext
    idea = await _current_idea(manager)
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


async def _may_comment(callback: CallbackQuery, manager: DialogManager) -> bool:
    """What the hidden Comment/Reply buttons stand for, checked again on a (forged) press."""
    if await _closed(callback, manager):
        return False
    ideas = services_of(manager).ideas
    idea = await _current_idea(manager)
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
    if not await _may_comment(callback, manager):
        return
    BrowseData.of(manager).parent = None
    await manager.switch_to(Ideas.comment)


async def on_reply_start(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    if not await _may_comment(callback, manager):
        return
    await manager.switch_to(Ideas.reply_pick)


async def on_report_start(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    ideas = services_of(manager).ideas
    member = member_of(manager)
    if await _current_idea(manager) is None or member is None:
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
    shown, _page, _count, _total = await _page_comments(dialog_manager)
    return {
        "targets": [(c.id, f"{n}. {_name(c)}") for n, c, _ in shown if c.parent_id is None],
        "all_targets": [(c.id, f"{n}. {_name(c)}") for n, c, _ in shown],
    }


async def on_reply_target(
    callback: CallbackQuery, _: Any, manager: DialogManager, comment_id: str
) -> None:
    if await _closed(callback, manager):
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
    if await _closed(message, manager):
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
    idea = await _current_idea(manager)
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


async def on_not_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    await message.answer(translator_of(manager).gettext("Envoyez du texte, s’il vous plaît."))
    manager.show_mode = ShowMode.SEND


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
    idea = await _current_idea(manager)
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
    if await _closed(callback, manager):
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
