"""The review card's buttons (✅ Approve, ✏️ Edit): organisers only, on the version shown."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import DialogManager, StartMode

from bot.context import AppContext
from bot.i18n import Translator
from bot.results.commentary import Change, CommentaryService, Outcome
from bot.results.commentary_cards import CommentaryAction, review_card
from bot.results.commentary_dialog import EditStart
from bot.services import UpdateServices
from bot.ui.presenters import when
from bot.ui.states import CommentaryEdit


async def on_commentary(
    query: CallbackQuery,
    callback_data: CommentaryAction,
    app: AppContext,
    translator: Translator,
    services: UpdateServices,
    dialog_manager: DialogManager,
    lang: str,
) -> None:
    _ = translator.gettext
    if not app.is_admin(query.from_user.id):
        await query.answer(
            _("Seuls les organisateurs peuvent approuver ou modifier le commentaire."),
            show_alert=True,
        )
        return
    commentary = services.commentary
    if callback_data.action == "ok":
        change = await commentary.approve(
            callback_data.version, query.from_user.id, query.from_user.full_name, app.clock()
        )
    elif callback_data.action == "edit":
        change = await _editable(commentary, callback_data.version)
    else:
        await query.answer(_("Ce bouton n’est plus valable."), show_alert=True)
        return
    if change.outcome == Outcome.DONE and callback_data.action == "edit":
        await query.answer()
        await dialog_manager.start(
            CommentaryEdit.text,
            data=EditStart(callback_data.version).dump(),
            mode=StartMode.RESET_STACK,
        )
        return
    await _tell(query, app, translator, commentary, change, lang)


async def _editable(commentary: CommentaryService, version: int) -> Change:
    record = await commentary.current()
    if record is None:
        return Change(Outcome.MISSING, None)
    if record.approved:
        return Change(Outcome.APPROVED, record)
    return Change(Outcome.DONE if record.version == version else Outcome.STALE, record)


async def _tell(
    query: CallbackQuery,
    app: AppContext,
    translator: Translator,
    commentary: CommentaryService,
    change: Change,
    lang: str,
) -> None:
    """The press's outcome: an alert, the card updated, or the latest version sent."""
    _ = translator.gettext
    c, record = app.consultation, change.record
    message = query.message if isinstance(query.message, Message) else None
    if change.outcome == Outcome.MISSING or record is None:
        await query.answer(
            _("Pas de commentaire à relire pour l’instant : il le sera à la clôture du sondage."),
            show_alert=True,
        )
        return
    if change.outcome == Outcome.DONE and change.sent:
        await query.answer(
            translator.ngettext(
                "✅ Commentaire approuvé : il part vers {n} destinataire des résultats.",
                "✅ Commentaire approuvé : il part vers les {n} destinataires des résultats.",
                change.sent,
            ).format(n=change.sent),
            show_alert=True,
        )
    elif change.outcome == Outcome.DONE:
        await query.answer(_("✅ Commentaire approuvé : il suivra les résultats."), show_alert=True)
    elif change.outcome == Outcome.APPROVED:
        date = when(record.approved_at, c, lang, time=True) if record.approved_at else "—"
        await query.answer(
            _("Ce commentaire a déjà été approuvé (le {date}).").format(date=date),
            show_alert=True,
        )
    else:  # stale: another organiser saved a newer version meanwhile
        await query.answer(
            _("Le commentaire a été modifié depuis : voici sa dernière version."),
            show_alert=True,
        )
        if message is not None:
            await message.edit_reply_markup(reply_markup=None)
            for text, markup in commentary.review_messages(record, lang):
                await message.answer(text, reply_markup=markup)
        return
    if message is not None:  # approved now or before: the card says so, without buttons
        await message.edit_text(review_card(c, record, lang, translator), reply_markup=None)


def build_router() -> Router:
    r = Router(name="commentary")
    r.callback_query.register(on_commentary, CommentaryAction.filter())
    return r
