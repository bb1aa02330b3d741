"""/mydata and /forget (with a confirmation button)."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram_dialog import DialogManager
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.i18n import Translator
from bot.members.privacy import edit_group_cards, forget, my_data_messages
from bot.telegram.filters import PrivateChat
from storage.repositories.members import MemberRecord


class ForgetChoice(CallbackData, prefix="fg"):
    confirm: bool


async def my_data(
    message: Message,
    app: AppContext,
    translator: Translator,
    session: AsyncSession,
    member: MemberRecord | None,
    lang: str,
) -> None:
    if member is None:
        await message.answer(translator.gettext("Nous ne conservons aucune donnée à votre sujet."))
        return
    for part in await my_data_messages(session, app, translator, member.id, lang):
        await message.answer(part)


async def forget_command(message: Message, translator: Translator) -> None:
    _ = translator.gettext
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("🗑 Oui, tout effacer"), callback_data=ForgetChoice(confirm=True).pack()
                ),
                InlineKeyboardButton(
                    text=_("Annuler"), callback_data=ForgetChoice(confirm=False).pack()
                ),
            ]
        ]
    )
    await message.answer(
        _(
            "Effacer toutes vos données : vos réponses au sondage, vos idées, vos commentaires "
            "et vos soutiens ? C’est définitif."
        ),
        reply_markup=keyboard,
    )


async def forget_choice(
    query: CallbackQuery,
    callback_data: ForgetChoice,
    bot: Bot,
    app: AppContext,
    translator: Translator,
    session: AsyncSession,
    dialog_manager: DialogManager,
) -> None:
    _ = translator.gettext
    if not callback_data.confirm:
        await query.answer(_("Rien n’a été effacé."))
        if isinstance(query.message, Message):
            await query.message.edit_reply_markup(reply_markup=None)
        return
    await dialog_manager.reset_stack(remove_keyboard=False)
    # An empty stack that remembers no message is stored as nothing at all: aiogram-dialog
    # saves the stack after this handler, and must not write the member's key back.
    dialog_manager.current_stack().last_message_id = None
    edits = await forget(session, app, translator, query.from_user.id)
    await query.answer(_("Vos données ont été effacées."), show_alert=True)
    if isinstance(query.message, Message):
        await query.message.edit_text(
            _("Vos données ont été effacées. Pour participer à nouveau : /start"), reply_markup=None
        )
    await edit_group_cards(bot, edits)


def build_router() -> Router:
    r = Router(name="privacy")
    r.message.filter(PrivateChat())
    r.message.register(my_data, Command("mydata"))
    r.message.register(forget_command, Command("forget"))
    r.callback_query.register(forget_choice, ForgetChoice.filter(), PrivateChat())
    return r
