"""/announce for organisers: audience, text, a confirmation that says how many receive it."""

from __future__ import annotations

from typing import Any

from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, ShowMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Cancel, Column, Row
from aiogram_dialog.widgets.text import Format
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.ratelimit import send_limits
from bot.i18n import N_, Translator
from bot.organisers.announce import AUDIENCES, announce, announcement_plan, audience_size
from bot.organisers.broadcast_view import estimate_lines
from bot.ui.deps import app_of, doorbell_of, session_of, translator_of
from bot.ui.dialog_data import DialogRecord, Entry
from bot.ui.states import Announce
from bot.ui.widgets import Choices, T, TextInput

AUDIENCE_NAMES = {
    "amb": N_("Ambassadeurs"),
    "off": N_("Élus et responsables locaux"),
    "mod": N_("Modérateurs"),
    "all": N_("Tout le monde"),
}


class AnnounceData(DialogRecord):
    audience = Entry[str]("audience", "amb")  # a key of AUDIENCES
    html = Entry[str | None]("html", None)  # the announcement, as the organiser formatted it


async def audiences_getter(translator: Translator, **_: Any) -> dict[str, Any]:
    return {"audiences": [(k, translator.gettext(v)) for k, v in AUDIENCE_NAMES.items()]}


async def on_audience(callback: CallbackQuery, _: Any, manager: DialogManager, key: str) -> None:
    if key not in AUDIENCES or not app_of(manager).is_admin(callback.from_user.id):
        await callback.answer()
        return
    AnnounceData.of(manager).audience = key
    await manager.switch_to(Announce.text)


async def on_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    AnnounceData.of(manager).html = message.html_text
    await manager.switch_to(Announce.confirm)


async def on_not_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    await message.answer(
        translator_of(manager).gettext("Envoyez le texte de l’annonce, s’il vous plaît.")
    )
    manager.show_mode = ShowMode.SEND


async def confirm_getter(
    dialog_manager: DialogManager, translator: Translator, session: AsyncSession, **_: Any
) -> dict[str, Any]:
    data = AnnounceData.of(dialog_manager)
    count = await audience_size(session, data.audience)
    plan = await announcement_plan(session, count, send_limits(app_of(dialog_manager).settings))
    return {
        "question": translator.ngettext(
            "Cette annonce sera envoyée à {count} personne : {audience}. Confirmer ?",
            "Cette annonce sera envoyée à {count} personnes : {audience}. Confirmer ?",
            count,
        ).format(count=count, audience=translator.gettext(AUDIENCE_NAMES[data.audience])),
        "plan": "\n".join(estimate_lines(plan, translator)),
        "html": data.html or "",
    }


async def on_send(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    app = app_of(manager)
    data = AnnounceData.of(manager)
    if not app.is_admin(callback.from_user.id) or data.html is None:
        await callback.answer()
        await manager.done()
        return
    count = await announce(
        session_of(manager),
        app.consultation.id,
        data.audience,
        data.html,
        app.clock(),
        # The dialog's id: the same announcement is queued once, however often it is confirmed.
        manager.current_context().id,
        callback.from_user.id,
        callback.from_user.full_name,
    )
    doorbell_of(manager).ring()
    await callback.answer(
        translator_of(manager)
        .ngettext("Annonce envoyée à {n} membre.", "Annonce envoyée à {n} membres.", count)
        .format(n=count),
        show_alert=True,
    )
    await manager.done()


def announce_dialog() -> Dialog:
    """A fresh dialog: a router can belong to one dispatcher only."""
    return Dialog(
        Window(
            T("📣 <b>Annonce</b>\nÀ qui l’envoyer ?"),
            Column(
                Choices("a", "audiences", on_audience),
            ),
            Cancel(T("Annuler")),
            state=Announce.audience,
            getter=audiences_getter,
        ),
        Window(
            T("Envoyez maintenant le texte de l’annonce (la mise en forme est conservée)."),
            *TextInput(on_text, on_not_text),
            Cancel(T("Annuler")),
            state=Announce.text,
        ),
        Window(
            Format("{html}\n\n———"),
            Format("{plan}\n\n{question}"),
            Row(Button(T("📨 Envoyer"), id="send", on_click=on_send), Cancel(T("Annuler"))),
            state=Announce.confirm,
            getter=confirm_getter,
        ),
    )
