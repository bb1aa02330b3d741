"""✏️ Edit on the commentary's review: the organiser rewrites it language by language.

The source language comes first, then each other language; for each, the organiser sends the
new text (its formatting kept) or keeps the current one. A translation kept while the source
changed is flagged on the next review card, so that whoever approves sees it: the results must
not wait for a translator, but nobody approves a stale translation without being told.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, ShowMode, Window
from aiogram_dialog.widgets.kbd import Button, Cancel
from aiogram_dialog.widgets.text import Format

from bot.i18n import Translator, language_name
from bot.phases.kinds import COMMENTARY_CHARS
from bot.results.commentary import Outcome, too_long
from bot.text_budget import units
from bot.ui.deps import app_of, lang_of, services_of, translator_of
from bot.ui.dialog_data import DialogRecord, Entry, StartRecord
from bot.ui.states import CommentaryEdit
from bot.ui.widgets import T, TextInput


@dataclass(frozen=True)
class EditStart(StartRecord):
    version: int = 0  # the version the organiser was shown


class EditData(DialogRecord):
    step = Entry[int]("step", 0)  # index in the consultation's languages
    texts = Entry[dict[str, str]]("texts", {})  # language -> the organiser's new HTML


def _language(manager: DialogManager) -> str:
    languages = app_of(manager).consultation.languages
    return languages[min(EditData.of(manager).step, len(languages) - 1)]


async def edit_getter(
    dialog_manager: DialogManager, translator: Translator, lang: str, **_: Any
) -> dict[str, Any]:
    manager = dialog_manager
    code = _language(manager)
    record = await services_of(manager).commentary.current()
    current = record.texts.get(code) if record else None
    languages = app_of(manager).consultation.languages
    return {
        "language": escape(language_name(code, lang)),
        "step": EditData.of(manager).step + 1,
        "steps": len(languages),
        "current": current or translator.gettext("(pas de texte)"),
        "has_current": bool(current),
        "no_current": not current,
    }


async def on_text(message: Message, _: Any, manager: DialogManager) -> None:
    translator = translator_of(manager)
    html = (message.html_text or "").strip()
    if too_long(html):
        await message.answer(
            translator.gettext(
                "Ce texte est trop long ({n} caractères, au plus {max}) : raccourcissez-le, "
                "s’il vous plaît."
            ).format(n=units(html), max=COMMENTARY_CHARS)
        )
        manager.show_mode = ShowMode.SEND
        return
    data = EditData.of(manager)
    data.texts = {**data.texts, _language(manager): html}
    manager.show_mode = ShowMode.SEND  # the organiser's message sits above: ask below it
    await _next(manager, message)


async def on_not_text(message: Message, _: Any, manager: DialogManager) -> None:
    await message.answer(
        translator_of(manager).gettext("Envoyez le texte du commentaire, s’il vous plaît.")
    )
    manager.show_mode = ShowMode.SEND


async def on_keep(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    await _next(manager, callback)


async def _next(manager: DialogManager, event: Message | CallbackQuery) -> None:
    data = EditData.of(manager)
    if data.step + 1 < len(app_of(manager).consultation.languages):
        data.step += 1
        return
    await _save(manager, event)


async def _save(manager: DialogManager, event: Message | CallbackQuery) -> None:
    """The last language done: a new version, and its review for the organiser."""
    app, translator, lang = app_of(manager), translator_of(manager), lang_of(manager)
    bot, user = event.bot, event.from_user
    if bot is None or user is None or not app.is_admin(user.id):
        await manager.done()
        return
    commentary = services_of(manager).commentary
    start = EditStart.load(manager.start_data)
    change = await commentary.revise(
        start.version, EditData.of(manager).texts, user.id, user.full_name, app.clock()
    )
    await manager.done()
    _ = translator.gettext
    if change.record is None:
        await bot.send_message(
            user.id,
            _("Pas de commentaire à relire pour l’instant : il le sera à la clôture du sondage."),
        )
        return
    if change.outcome == Outcome.APPROVED:
        await bot.send_message(
            user.id, _("Le commentaire a été approuvé entre-temps : il n’a pas été modifié.")
        )
        return
    if change.outcome == Outcome.STALE:
        note = _(
            "Un autre organisateur l’a modifié entre-temps : voici sa version, la vôtre n’a pas été enregistrée."
        )
        await bot.send_message(user.id, note)
    for text, markup in commentary.review_messages(change.record, lang):
        await bot.send_message(user.id, text, reply_markup=markup)


def commentary_dialog() -> Dialog:
    """A fresh dialog: a router can belong to one dispatcher only."""
    return Dialog(
        Window(
            T(
                "✏️ <b>Commentaire en {language}</b> ({step}/{steps})\n"
                "Envoyez le nouveau texte (la mise en forme est conservée), ou gardez le "
                "texte actuel :"
            ),
            Format("\n{current}"),
            *TextInput(on_text, on_not_text),
            Button(T("Garder ce texte"), id="keep", on_click=on_keep, when="has_current"),
            Button(T("Passer"), id="skip", on_click=on_keep, when="no_current"),
            Cancel(T("Annuler")),
            state=CommentaryEdit.text,
            getter=edit_getter,
        ),
    )
