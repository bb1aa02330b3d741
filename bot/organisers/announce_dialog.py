"""/announce for organisers: audience, text, a confirmation that says how many receive it."""

from __future__ import annotations

from typing import Any

from aiogram.enums import ContentType
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, ShowMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Cancel, Column, Row
from aiogram_dialog.widgets.text import Format

from bot.context import AppContext
from bot.i18n import N_
from bot.organisers.announce import AUDIENCES, announce, audience_size
from bot.ui.states import Announce
from bot.ui.widgets import Choices, T

AUDIENCE_NAMES = {
    "amb": N_("Ambassadeurs"),
    "off": N_("Élus et responsables locaux"),
    "mod": N_("Modérateurs"),
    "all": N_("Tout le monde"),
}


def _admin(manager: DialogManager) -> bool:
    app: AppContext = manager.middleware_data["app"]
    user = manager.middleware_data.get("event_from_user")
    return user is not None and app.is_admin(user.id)


async def audiences_getter(app: AppContext, **_: Any) -> dict[str, Any]:
    return {"audiences": [(k, app.translator.gettext(v)) for k, v in AUDIENCE_NAMES.items()]}


async def on_audience(callback: CallbackQuery, _: Any, manager: DialogManager, key: str) -> None:
    if key not in AUDIENCES or not _admin(manager):
        await callback.answer()
        return
    manager.dialog_data["audience"] = key
    await manager.switch_to(Announce.text)


async def on_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    manager.dialog_data["html"] = message.html_text
    await manager.switch_to(Announce.confirm)


async def on_not_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    app: AppContext = manager.middleware_data["app"]
    await message.answer(app.translator.gettext("Envoyez le texte de l’annonce, s’il vous plaît."))
    manager.show_mode = ShowMode.SEND


async def confirm_getter(
    dialog_manager: DialogManager, app: AppContext, session: Any, **_: Any
) -> dict[str, Any]:
    key = dialog_manager.dialog_data.get("audience", "amb")
    count = await audience_size(session, key)
    return {
        "question": app.translator.ngettext(
            "Cette annonce sera envoyée à {count} personne : {audience}. Confirmer ?",
            "Cette annonce sera envoyée à {count} personnes : {audience}. Confirmer ?",
            count,
        ).format(count=count, audience=app.translator.gettext(AUDIENCE_NAMES[key])),
        "html": dialog_manager.dialog_data.get("html", ""),
    }


async def on_send(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    app: AppContext = manager.middleware_data["app"]
    if not _admin(manager) or "html" not in manager.dialog_data:
        await callback.answer()
        await manager.done()
        return
    count = await announce(
        manager.middleware_data["session"],
        app.consultation.id,
        manager.dialog_data["audience"],
        manager.dialog_data["html"],
        app.clock(),
        # The dialog's id: the same announcement is queued once, however often it is confirmed.
        manager.current_context().id,
        callback.from_user.id,
        callback.from_user.full_name,
    )
    app.wake_outbox()
    await callback.answer(
        app.translator.ngettext(
            "Annonce envoyée à {n} membre.", "Annonce envoyée à {n} membres.", count
        ).format(n=count),
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
            MessageInput(on_text, content_types=[ContentType.TEXT]),
            MessageInput(on_not_text, content_types=[ContentType.ANY]),
            Cancel(T("Annuler")),
            state=Announce.text,
        ),
        Window(
            Format("{html}\n\n———"),
            Format("{question}"),
            Row(Button(T("📨 Envoyer"), id="send", on_click=on_send), Cancel(T("Annuler"))),
            state=Announce.confirm,
            getter=confirm_getter,
        ),
    )
