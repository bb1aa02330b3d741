"""Private-chat commands: /start (with invitation payloads), /language, /help."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import DialogManager, ShowMode, StartMode

from bot.context import AppContext
from bot.i18n import Translator
from bot.ideas.browse_state import IdeasStart
from bot.ideas.rules import IDEA_PAYLOAD, parse_id
from bot.members.invitations import PAYLOAD_PREFIX
from bot.members.language_dialog import LanguageStart
from bot.services import UpdateServices
from bot.telegram.filters import PrivateChat
from bot.ui.presenters import help_text, welcome_text
from bot.ui.states import Ideas, LanguagePick, MainMenu
from storage.repositories.invitations import Redeem
from storage.repositories.members import MemberRecord


def invitation_text(translator: Translator, outcome: Redeem) -> str:
    _ = translator.gettext
    return {
        Redeem.OK: _("✅ Invitation acceptée : bienvenue !"),
        Redeem.ALREADY: _("Vous avez déjà utilisé cette invitation : bienvenue à nouveau !"),
        Redeem.UNKNOWN: _(
            "❌ Ce lien d’invitation n’est pas valide. Demandez-en un nouveau aux organisateurs."
        ),
        Redeem.EXPIRED: _(
            "⌛ Ce lien d’invitation a expiré. Demandez-en un nouveau aux organisateurs."
        ),
        Redeem.REVOKED: _(
            "❌ Ce lien d’invitation a été retiré par les organisateurs. Demandez-leur un "
            "nouveau lien si vous pensez qu’il s’agit d’une erreur."
        ),
        Redeem.USED_UP: _(
            "Ce lien d’invitation a déjà servi autant de fois que prévu. Demandez-en un nouveau aux organisateurs."
        ),
    }[outcome]


async def start(
    message: Message,
    command: CommandObject,
    dialog_manager: DialogManager,
    app: AppContext,
    translator: Translator,
    services: UpdateServices,
    member: MemberRecord,
    lang: str,
) -> None:
    members = services.members
    payload = (command.args or "").strip()
    if payload.startswith(PAYLOAD_PREFIX):
        outcome = await members.use_invitation(member, payload.removeprefix(PAYLOAD_PREFIX))
        await message.answer(invitation_text(translator, outcome.outcome))
    if not members.has_access(member):
        await message.answer(
            translator.gettext(
                "Cette consultation est réservée aux personnes invitées. Ouvrez le lien "
                "d’invitation reçu des organisateurs."
            )
        )
        return
    shared = payload.startswith(IDEA_PAYLOAD)
    idea_id = parse_id(payload.removeprefix(IDEA_PAYLOAD)) if shared else None
    if shared and idea_id is None:
        # A mangled or forged link: say so, then the menu as usual.
        await message.answer(translator.gettext("Ce lien ne mène à aucune idée : voici le menu."))
    if member.language is None:
        # Language first; the shared idea (if any) opens right after.
        data = LanguageStart(welcome=True, idea=idea_id).dump()
        await dialog_manager.start(LanguagePick.choose, data=data, mode=StartMode.RESET_STACK)
        return
    if idea_id is not None:
        # Opened from a shared link: straight to the idea, with the menu under it.
        await dialog_manager.start(MainMenu.menu, mode=StartMode.RESET_STACK)
        await dialog_manager.start(Ideas.idea, data=IdeasStart(idea_id).dump())
        return
    await message.answer(welcome_text(app, translator, lang))
    await dialog_manager.start(MainMenu.menu, mode=StartMode.RESET_STACK)


async def menu(message: Message, dialog_manager: DialogManager) -> None:
    await dialog_manager.start(MainMenu.menu, mode=StartMode.RESET_STACK)


async def language(message: Message, dialog_manager: DialogManager) -> None:
    await dialog_manager.start(LanguagePick.choose, mode=StartMode.RESET_STACK)


async def help_command(
    message: Message, app: AppContext, translator: Translator, lang: str
) -> None:
    await message.answer(help_text(app, translator, lang))


async def fallback(message: Message, dialog_manager: DialogManager, translator: Translator) -> None:
    """Anything else outside a dialog: say how to go on, then show the menu."""
    await message.answer(
        translator.gettext("Je n’ai pas compris. Voici le menu : utilisez les boutons.")
    )
    await dialog_manager.start(MainMenu.menu, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)


async def unknown_button(query: CallbackQuery, translator: Translator) -> None:
    """A button no handler recognises (forged, or from an older version): answered, so the
    client stops waiting."""
    await query.answer(translator.gettext("Ce bouton n’est plus actif."))


def build_router() -> Router:
    r = Router(name="commands")
    r.message.filter(PrivateChat())
    r.message.register(start, CommandStart())
    r.message.register(menu, Command("menu"))
    r.message.register(language, Command("language"))
    r.message.register(help_command, Command("help"))
    return r


def build_fallback_router() -> Router:
    r = Router(name="fallback")
    r.message.filter(PrivateChat())
    r.message.register(fallback)
    r.callback_query.register(unknown_button)
    return r
