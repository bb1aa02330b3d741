"""The main menu: what the current phase allows, in a few buttons."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.widgets.kbd import Button, Column, Start
from aiogram_dialog.widgets.text import Format

from bot.communes.dialog import CommuneStart
from bot.consultation import PhaseKind
from bot.context import AppContext
from bot.i18n import Translator
from bot.phases.kinds import PHASE_TYPES
from bot.results.view import may_see_results, send_results
from bot.ui.deps import (
    app_of,
    charts_of,
    lang_of,
    member_of,
    services_of,
    session_of,
    translator_of,
)
from bot.ui.presenters import help_text, status_text, when
from bot.ui.states import CommunePick, Ideas, LanguagePick, MainMenu, Survey
from bot.ui.widgets import T
from storage.repositories.members import MemberRecord

if TYPE_CHECKING:
    from bot.services import UpdateServices


async def menu_getter(
    app: AppContext,
    lang: str,
    translator: Translator,
    services: UpdateServices,
    member: MemberRecord | None = None,
    **_: Any,
) -> dict[str, Any]:
    now = app.clock()
    c = app.consultation
    data: dict[str, Any] = {
        "title": c.text(c.title, lang),
        "status": status_text(c, now, lang, translator),
    }
    for kind in PHASE_TYPES.values():  # each kind's flags show its buttons below
        data.update(await kind.menu_flags(app, services, member, now))
    data["commune"] = member is not None and services.communes.may_change(now)
    return data


async def open_survey(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    app = app_of(manager)
    if not app.timeline.is_open(PhaseKind.SURVEY, app.clock()):
        phase = app.consultation.phase(PhaseKind.SURVEY)
        lang, translator = lang_of(manager), translator_of(manager)
        text = (
            translator.gettext("Le sondage est ouvert du {start} au {end}.").format(
                start=when(phase.starts, app.consultation, lang, time=True),
                end=when(phase.ends, app.consultation, lang, time=True),
            )
            if phase
            else translator.gettext("Le sondage n’est pas ouvert.")
        )
        await callback.answer(text, show_alert=True)
        return
    services, member = services_of(manager), member_of(manager)
    # Asked once, before the first question (the survey's own checks come after).
    if (
        member is not None
        and services.members.may_answer(member)
        and await services.communes.needs_asking(member.id)
    ):
        await manager.start(CommunePick.ask, data=CommuneStart(then_survey=True).dump())
        return
    await manager.start(Survey.question)


async def open_ideas(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    # The button is hidden before the ideas phase; a forged press is refused all the same.
    app = app_of(manager)
    phase = app.consultation.phase(PhaseKind.IDEAS)
    if phase is None or not app.timeline.has_started(PhaseKind.IDEAS, app.clock()):
        lang, translator = lang_of(manager), translator_of(manager)
        text = (
            translator.gettext("La phase des idées s’ouvre le {start}.").format(
                start=when(phase.starts, app.consultation, lang, time=True)
            )
            if phase
            else translator.gettext("Cette consultation n’a pas de phase d’idées.")
        )
        await callback.answer(text, show_alert=True)
        return
    await manager.start(Ideas.projects)


async def show_results(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    app, member, translator = app_of(manager), member_of(manager), translator_of(manager)
    if not may_see_results(app, member) or not isinstance(callback.message, Message):
        await callback.answer(translator.gettext("Les résultats ne sont pas encore publiés."))
        return
    await callback.answer()
    await send_results(
        callback.message,
        app,
        charts_of(manager),
        translator,
        session_of(manager),
        lang_of(manager),
        member,
        services_of(manager).commentary,
    )
    await manager.start(MainMenu.menu, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)


async def show_help(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    await callback.answer()
    if callback.message:
        text = help_text(app_of(manager), translator_of(manager), lang_of(manager))
        await callback.message.answer(text)
    await manager.start(MainMenu.menu, mode=StartMode.RESET_STACK)


def menu_dialog() -> Dialog:
    """A fresh dialog: a router can belong to one dispatcher only."""
    return Dialog(
        Window(
            Format("<b>{title}</b>\n\n{status}"),
            Column(
                Button(
                    T("📝 Répondre au sondage"), id="sv", on_click=open_survey, when="survey_new"
                ),
                Button(
                    T("📝 Continuer le sondage"),
                    id="sv_c",
                    on_click=open_survey,
                    when="survey_draft",
                ),
                Button(
                    T("✏️ Revoir mes réponses"), id="sv_r", on_click=open_survey, when="survey_done"
                ),
                Button(T("💡 Idées"), id="ideas", on_click=open_ideas, when="ideas"),
                Button(T("📊 Résultats"), id="res", on_click=show_results, when="results"),
                Start(T("📍 Ma commune"), id="cm", state=CommunePick.ask, when="commune"),
                Start(T("🌐 Langue"), id="lng", state=LanguagePick.choose),
                Button(T("❓ Aide"), id="hlp", on_click=show_help),
            ),
            state=MainMenu.menu,
            getter=menu_getter,
        ),
    )
