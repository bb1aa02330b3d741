"""The member's commune: typed as a postal code or the first letters of a name, picked among
a handful of matches, in the member's language; "rather not say" is an answer too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Column, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.communes.service import Choice
from bot.context import AppContext
from bot.i18n import Translator
from bot.results.view import send_results_to
from bot.services import UpdateServices
from bot.ui.deps import app_of, lang_of, member_of, services_of, translator_of
from bot.ui.dialog_data import DialogRecord, Entry, StartRecord
from bot.ui.states import CommunePick, MainMenu, Survey
from bot.ui.widgets import Choices, T, TextInput, tell
from storage.repositories.members import MemberRecord

# What a member types is a few words at most; a long message is not a commune.
QUERY_CHARS = 60


@dataclass(frozen=True)
class CommuneStart(StartRecord):
    """Start data: asked before the survey (which opens once answered), or from the menu."""

    then_survey: bool = False
    then_results: bool = False  # an official asked before their first results


class CommuneData(DialogRecord):
    matches = Entry[Sequence[str]]("m", ())  # the ids shown as buttons, best first
    more = Entry[bool]("more", False)  # more matched than shown


async def ask_getter(
    app: AppContext,
    lang: str,
    translator: Translator,
    services: UpdateServices,
    member: MemberRecord | None = None,
    **_: Any,
) -> dict[str, Any]:
    current = await services.communes.of_member(member.id) if member else None
    line = ""
    if current is not None and current.answered:
        _ = translator.gettext
        line = (
            _("Votre commune : {name}.").format(
                name=escape(app.communes.name_of(current.commune, lang) or "")
            )
            if current.commune
            else _("Vous avez préféré ne pas la dire.")
        )
    return {"current": line}


async def pick_getter(
    dialog_manager: DialogManager, app: AppContext, lang: str, **_: Any
) -> dict[str, Any]:
    data = CommuneData.of(dialog_manager)
    directory = app.communes
    communes = [c for c in map(directory.get, data.matches) if c is not None]
    labels = [directory.label(c, lang) for c in communes]
    # Two communes of one name (in this language) are told apart by a postal code.
    items = [
        (
            c.id,
            f"{label} ({c.postal_codes[0]})"
            if labels.count(label) > 1 and c.postal_codes
            else label,
        )
        for c, label in zip(communes, labels, strict=True)
    ]
    return {"matches": items, "more": data.more}


async def _open(event: CallbackQuery | Message, manager: DialogManager) -> bool:
    """The commune may be given or changed until the survey closes."""
    app, member = app_of(manager), member_of(manager)
    if member is not None and await services_of(manager).communes.may_change_for(
        member, app.clock()
    ):
        return True
    await tell(
        event,
        translator_of(manager).gettext(
            "Le sondage est clos : votre commune ne peut plus être changée."
        ),
    )
    await manager.start(MainMenu.menu, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)
    return False


async def on_query(message: Message, _: MessageInput, manager: DialogManager) -> None:
    if not await _open(message, manager):
        return
    query = " ".join((message.text or "").split())[:QUERY_CHARS]
    found = services_of(manager).communes.search(query)
    if not found.communes:
        await message.answer(
            translator_of(manager)
            .gettext(
                "Aucune commune ne correspond à « {query} ». Écrivez votre code postal "
                "(par exemple 5000) ou le début du nom de votre commune (par exemple Namur)."
            )
            .format(query=escape(query))
        )
        manager.show_mode = ShowMode.SEND
        await manager.switch_to(CommunePick.ask)
        return
    data = CommuneData.of(manager)
    data.matches = [c.id for c in found.communes]
    data.more = found.more
    manager.show_mode = ShowMode.SEND  # below the member's message, not above it
    await manager.switch_to(CommunePick.pick)


async def on_other_input(message: Message, _: MessageInput, manager: DialogManager) -> None:
    await message.answer(
        translator_of(manager).gettext(
            "Écrivez votre code postal ou le nom de votre commune, s’il vous plaît."
        )
    )
    manager.show_mode = ShowMode.SEND


async def _finish(manager: DialogManager, callback: CallbackQuery) -> None:
    start = CommuneStart.load(manager.start_data)  # read before the dialog closes
    if start.then_results and isinstance(callback.message, Message):
        # The results the official asked for, their commune's beside the network's, below.
        await manager.done(show_mode=ShowMode.NO_UPDATE)
        await send_results_to(callback.message, manager)
        await manager.start(MainMenu.menu, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)
        return
    if not start.then_survey:
        await manager.done()
        return
    # Straight to the first question: the menu below is not shown in between (one screen,
    # not the menu and then the question).
    await manager.done(show_mode=ShowMode.NO_UPDATE)
    await manager.start(Survey.question, show_mode=ShowMode.EDIT)


async def _choose(callback: CallbackQuery, manager: DialogManager, commune_id: str | None) -> None:
    if not await _open(callback, manager):
        return
    member = member_of(manager)
    assert member is not None  # checked by _open
    app, translator = app_of(manager), translator_of(manager)
    choice = await services_of(manager).communes.choose(member, commune_id, app.clock())
    _ = translator.gettext
    if choice == Choice.CLOSED:  # closed between the check and the write
        await _open(callback, manager)
        return
    if choice == Choice.UNKNOWN:
        await callback.answer(_("Cette commune n’est pas dans la liste : cherchez-la à nouveau."))
        await manager.switch_to(CommunePick.ask)
        return
    name = app.communes.name_of(commune_id, lang_of(manager))
    # Answered once the next screen is drawn: a spinner that stopped on the unchanged list
    # made members tap their commune again (a stale tap, issue 20).
    await _finish(manager, callback)
    await callback.answer(
        _("📍 Commune enregistrée : {name}.").format(name=name)
        if name
        else _("Entendu : nous ne vous la demanderons plus.")
    )


async def on_pick(callback: CallbackQuery, _: Any, manager: DialogManager, commune_id: str) -> None:
    await _choose(callback, manager, commune_id)


async def on_decline(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    await _choose(callback, manager, None)


async def on_back(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    await manager.done()


def commune_dialog() -> Dialog:
    """A fresh dialog: a router can belong to one dispatcher only."""
    decline = Button(T("🤐 Je préfère ne pas le dire"), id="no", on_click=on_decline)
    return Dialog(
        Window(
            T("📍 <b>Dans quelle commune habitez-vous ?</b>"),
            Format("{current}", when="current"),
            T(
                "Écrivez votre code postal ou les premières lettres du nom de votre commune. "
                "Les résultats pourront ainsi être présentés par commune."
            ),
            decline,
            Button(T("◀️ Retour"), id="back", on_click=on_back),
            *TextInput(on_query, on_other_input),
            state=CommunePick.ask,
            getter=ask_getter,
        ),
        Window(
            T("📍 Choisissez votre commune :"),
            T(
                "D’autres communes correspondent aussi : écrivez quelques lettres de plus pour "
                "les voir.",
                when="more",
            ),
            Column(Choices("c", "matches", on_pick)),
            SwitchTo(T("🔎 Chercher une autre commune"), id="again", state=CommunePick.ask),
            decline,
            *TextInput(on_query, on_other_input),
            state=CommunePick.pick,
            getter=pick_getter,
        ),
    )
