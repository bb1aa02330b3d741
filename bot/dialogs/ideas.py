"""Browsing ideas: projects, approved ideas (newest or most supported), an idea with its
comments; support, comment, reply, report."""

from __future__ import annotations

import operator
from html import escape
from typing import Any

from aiogram.enums import ContentType
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Column, Group, Row, Select, Start, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.context import AppContext
from bot.dialogs.states import Ideas, MainMenu, MyIdeas, SubmitIdea
from bot.dialogs.widgets import Choices, T, tell
from bot.ideas import COMMENT_MAX, IdeaService, TextProblem, check_text, idea_link
from storage.models import Comment, Idea
from storage.repositories.ideas import IdeaRepository

PAGE = 5


def _ctx(manager: DialogManager) -> tuple[AppContext, IdeaService, str]:
    data = manager.middleware_data
    return data["app"], IdeaService(data["session"], data["app"]), data["lang"]


async def _closed(event: CallbackQuery | Message, manager: DialogManager) -> bool:
    """True (after telling the member) when the ideas phase no longer allows this."""
    app, service, _ = _ctx(manager)
    if service.is_open():
        return False
    text = app.translator.gettext(
        "La phase des idées est close : les idées restent lisibles, mais on ne peut plus "
        "en proposer, les soutenir ni les commenter."
    )
    await tell(event, text)
    return True


async def on_start(start_data: Any, manager: DialogManager) -> None:
    if isinstance(start_data, dict) and "idea" in start_data:
        manager.dialog_data["idea"] = int(start_data["idea"])


async def projects_getter(
    dialog_manager: DialogManager, app: AppContext, lang: str, **_: Any
) -> dict[str, Any]:
    _app, service, _lang = _ctx(dialog_manager)
    c = app.consultation
    from bot.consultation import PhaseKind

    phase = c.phase(PhaseKind.IDEAS)
    return {
        "title": escape(c.text(phase.title, lang)) if phase else "",
        "description": escape(c.text(phase.description, lang)) if phase else "",
        "projects": [(p.id, c.text(p.title, lang)) for p in service.projects()],
        "open": service.is_open(),
    }


async def on_project(
    callback: CallbackQuery, _: Any, manager: DialogManager, project_id: str
) -> None:
    _app, service, _lang = _ctx(manager)
    if service.project(project_id) is None:
        await callback.answer()
        return
    manager.dialog_data.update(project=project_id, page=0)
    await manager.switch_to(Ideas.project)


async def project_getter(
    dialog_manager: DialogManager, app: AppContext, lang: str, session: Any, **_: Any
) -> dict[str, Any]:
    _app, service, _lang = _ctx(dialog_manager)
    data = dialog_manager.dialog_data
    project = service.project(data.get("project", "")) or service.projects()[0]
    by_support = data.get("sort") == "top"
    page = int(data.get("page", 0))
    ideas, total = await IdeaRepository(session).approved(
        app.consultation.id, project.id, by_support, page * PAGE, PAGE
    )
    translator = app.translator
    return {
        "project": escape(app.consultation.text(project.title, lang)),
        "description": escape(app.consultation.text(project.description, lang)),
        "count": translator.ngettext("{n} idée approuvée", "{n} idées approuvées", total).format(
            n=total
        ),
        "ideas": [(i.id, f"💡 {i.title[:48]} · 👍 {i.supports}") for i in ideas],
        "has_prev": page > 0,
        "has_next": (page + 1) * PAGE < total,
        "by_new": not by_support,
        "by_top": by_support,
        "open": service.is_open(),
        "empty": total == 0,
    }


async def on_page(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    key = "cpage" if button.widget_id.startswith("c") else "page"
    step = 1 if button.widget_id.endswith("next") else -1
    manager.dialog_data[key] = max(0, int(manager.dialog_data.get(key, 0)) + step)


async def on_sort(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    manager.dialog_data["sort"] = "new" if manager.dialog_data.get("sort") == "top" else "top"
    manager.dialog_data["page"] = 0


async def on_idea(callback: CallbackQuery, _: Any, manager: DialogManager, idea_id: str) -> None:
    manager.dialog_data.update(idea=int(idea_id), cpage=0)
    await manager.switch_to(Ideas.idea)


def _visible(idea: Idea | None, member_id: int | None) -> bool:
    return idea is not None and (idea.status == "approved" or idea.author_id == member_id)


async def _current_idea(manager: DialogManager) -> Idea | None:
    idea = await IdeaRepository(manager.middleware_data["session"]).get(
        int(manager.dialog_data.get("idea", 0))
    )
    member = manager.middleware_data.get("member")
    return idea if _visible(idea, member.id if member else None) else None


async def _page_comments(manager: DialogManager) -> tuple[list[Comment], int, int]:
    comments = await IdeaRepository(manager.middleware_data["session"]).threads(
        int(manager.dialog_data.get("idea", 0))
    )
    pages = max(1, -(-len(comments) // PAGE))
    page = min(int(manager.dialog_data.get("cpage", 0)), pages - 1)
    return comments, page, pages


async def idea_getter(
    dialog_manager: DialogManager, app: AppContext, lang: str, **_: Any
) -> dict[str, Any]:
    _app, service, _lang = _ctx(dialog_manager)
    translator = app.translator
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
    member = dialog_manager.middleware_data.get("member")
    supported = member is not None and await service.repo.has_support(idea.id, member.id)
    comments, page, pages = await _page_comments(dialog_manager)
    project = service.project(idea.project_id)
    lines = [
        f"💡 <b>{escape(idea.title)}</b>",
        f"<i>{escape(app.consultation.text(project.title, lang)) if project else ''}</i>",
        "",
        escape(idea.text),
        "",
        translator.gettext("— {name} · 👍 {n}").format(
            name=escape(idea.author_name or "—"), n=idea.supports
        ),
    ]
    if idea.status != "approved":
        lines.append(
            translator.gettext(
                "<i>(pas encore publiée : en attente de modération ou non retenue)</i>"
            )
        )
    lines.append("")
    lines.append(
        translator.ngettext("💬 {n} commentaire", "💬 {n} commentaires", len(comments)).format(
            n=len(comments)
        )
    )
    for number, comment in enumerate(
        comments[page * PAGE : (page + 1) * PAGE], start=page * PAGE + 1
    ):
        indent = "    ↩️ " if comment.parent_id else ""
        line = translator.gettext("{number}. <b>{name}</b> : {text}").format(
            number=number, name=escape(comment.author_name or "—"), text=escape(comment.text)
        )
        lines.append(f"{indent}{line}")
    if pages > 1:
        lines.append(f"({page + 1} / {pages})")
    lines.append("")
    lines.append(idea_link(app, idea.id))
    open_ = service.is_open() and idea.status == "approved"
    return {
        "missing": False,
        "present": True,
        "body": "\n".join(lines),
        "open": open_,
        "supported": open_ and supported,
        "unsupported": open_ and not supported,
        "has_comments": open_ and bool(comments),
        "c_prev": page > 0,
        "c_next": page + 1 < pages,
    }


async def on_support(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    if await _closed(callback, manager):
        return
    app, service, _ = _ctx(manager)
    idea = await _current_idea(manager)
    member = manager.middleware_data.get("member")
    if idea is None or member is None or idea.status != "approved":
        await callback.answer(app.translator.gettext("Cette idée n’est pas (ou plus) disponible."))
        return
    on = button.widget_id == "sup"
    changed = await service.set_support(member, idea.id, on)
    _ = app.translator.gettext
    if on:
        text = _("Merci pour votre soutien !") if changed else _("Vous soutenez déjà cette idée.")
    else:
        text = _("Soutien retiré.") if changed else _("Vous ne souteniez pas cette idée.")
    await callback.answer(text)


async def on_comment_start(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    if await _closed(callback, manager):
        return
    manager.dialog_data["parent"] = None
    await manager.switch_to(Ideas.comment)


async def reply_getter(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    comments, page, _pages = await _page_comments(dialog_manager)
    shown = list(enumerate(comments[page * PAGE : (page + 1) * PAGE], start=page * PAGE + 1))
    return {
        "targets": [(c.id, f"{n}. {c.author_name[:20]}") for n, c in shown if c.parent_id is None],
        "all_targets": [(c.id, f"{n}. {c.author_name[:20]}") for n, c in shown],
    }


async def on_reply_target(
    callback: CallbackQuery, _: Any, manager: DialogManager, comment_id: str
) -> None:
    if await _closed(callback, manager):
        return
    comment = await IdeaRepository(manager.middleware_data["session"]).comment(int(comment_id))
    if comment is None or comment.hidden or comment.idea_id != manager.dialog_data.get("idea"):
        await callback.answer()
        return
    manager.dialog_data["parent"] = comment.id
    manager.dialog_data["parent_name"] = comment.author_name
    await manager.switch_to(Ideas.comment)


async def comment_getter(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    return {
        "reply": dialog_manager.dialog_data.get("parent") is not None,
        "new": dialog_manager.dialog_data.get("parent") is None,
        "name": escape(dialog_manager.dialog_data.get("parent_name") or ""),
        "max": COMMENT_MAX,
    }


async def on_comment_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    if await _closed(message, manager):
        manager.show_mode = ShowMode.SEND
        await manager.switch_to(Ideas.idea)
        return
    app, service, _lang = _ctx(manager)
    translator = app.translator
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
    member = manager.middleware_data.get("member")
    if idea is None or member is None or idea.status != "approved":
        await message.answer(translator.gettext("Cette idée n’est pas (ou plus) disponible."))
        manager.show_mode = ShowMode.SEND
        await manager.switch_to(Ideas.idea)
        return
    parent_id = manager.dialog_data.get("parent")
    parent = await service.repo.comment(parent_id) if parent_id else None
    if parent is not None and (parent.idea_id != idea.id or parent.parent_id is not None):
        parent = None
    await service.comment(member, idea, message.text or "", parent)
    await message.answer(translator.gettext("💬 Commentaire publié."))
    manager.show_mode = ShowMode.SEND
    await manager.switch_to(Ideas.idea)


async def on_not_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    app: AppContext = manager.middleware_data["app"]
    await message.answer(app.translator.gettext("Envoyez du texte, s’il vous plaît."))
    manager.show_mode = ShowMode.SEND


async def on_report_idea(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    await _report(callback, manager, None)


async def on_report_comment(
    callback: CallbackQuery, _: Any, manager: DialogManager, comment_id: str
) -> None:
    await _report(callback, manager, int(comment_id))


async def _report(callback: CallbackQuery, manager: DialogManager, comment_id: int | None) -> None:
    app, service, _ = _ctx(manager)
    idea = await _current_idea(manager)
    member = manager.middleware_data.get("member")
    comment = await service.repo.comment(comment_id) if comment_id else None
    if (
        idea is None
        or member is None
        or (comment_id and (comment is None or comment.idea_id != idea.id))
    ):
        await callback.answer()
        return
    new = await service.report(member, idea, comment)
    await callback.answer(
        app.translator.gettext("Merci : les modérateurs vont examiner ce signalement.")
        if new
        else app.translator.gettext("Vous l’avez déjà signalé : merci."),
        show_alert=True,
    )
    await manager.switch_to(Ideas.idea)


async def on_idea_back(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    if "project" not in manager.dialog_data:
        idea = await IdeaRepository(manager.middleware_data["session"]).get(
            int(manager.dialog_data.get("idea", 0))
        )
        if idea is None:
            await manager.switch_to(Ideas.projects)
            return
        manager.dialog_data.update(project=idea.project_id, page=0)
    await manager.switch_to(Ideas.project)


async def on_propose(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    if await _closed(callback, manager):
        return
    project = (
        manager.dialog_data.get("project")
        if manager.current_context().state == Ideas.project
        else None
    )
    await manager.start(SubmitIdea.project, data={"project": project} if project else None)


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
            Button(T("🔥 Les plus soutenues"), id="top", on_click=on_sort, when="by_new"),
            Button(T("🆕 Les plus récentes"), id="newest", on_click=on_sort, when="by_top"),
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
                SwitchTo(T("↩️ Répondre"), id="rep", state=Ideas.reply_pick, when="has_comments"),
            ),
            Row(
                Button(Format("◀️ 💬"), id="cprev", on_click=on_page, when="c_prev"),
                Button(Format("💬 ▶️"), id="cnext", on_click=on_page, when="c_next"),
            ),
            SwitchTo(T("⚠️ Signaler"), id="rpt", state=Ideas.report_pick, when="present"),
            Button(T("◀️ Retour"), id="back", on_click=on_idea_back),
            MessageInput(on_not_text, content_types=[ContentType.ANY]),
            state=Ideas.idea,
            getter=idea_getter,
        ),
        Window(
            T("💬 Écrivez votre commentaire ({max} caractères au plus).", when="new"),
            T("↩️ Écrivez votre réponse à {name} ({max} caractères au plus).", when="reply"),
            MessageInput(on_comment_text, content_types=[ContentType.TEXT]),
            MessageInput(on_not_text, content_types=[ContentType.ANY]),
            SwitchTo(T("Annuler"), id="cancel", state=Ideas.idea),
            state=Ideas.comment,
            getter=comment_getter,
        ),
        Window(
            T("À quel commentaire répondez-vous ?"),
            Group(
                Select(
                    Format("↩️ {item[1]}"),
                    id="rt",
                    item_id_getter=operator.itemgetter(0),
                    items="targets",
                    on_click=on_reply_target,
                ),
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
                Select(
                    Format("💬 {item[1]}"),
                    id="rc",
                    item_id_getter=operator.itemgetter(0),
                    items="all_targets",
                    on_click=on_report_comment,
                ),
                width=2,
            ),
            SwitchTo(T("Annuler"), id="cancel", state=Ideas.idea),
            state=Ideas.report_pick,
            getter=reply_getter,
        ),
        on_start=on_start,
    )
