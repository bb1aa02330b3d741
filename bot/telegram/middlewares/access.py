"""Who may use the bot in private: decided here, once, for every message and button.

In an invitation-only consultation, a person without access may only open an invitation
(`/start inv_…`), read /help, and see or erase what we hold (/mydata, /forget and its
buttons). Commands that check their own audience (/pending, /status, /audit...) pass too."""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.i18n import Translator
from bot.members.invitations import PAYLOAD_PREFIX
from bot.services import UpdateServices
from bot.telegram.middlewares import Handler

OPEN_COMMANDS = ("/help", "/mydata", "/forget", "/pending", "/status", "/audit", "/announce")
# Callback data prefixes of the /forget confirmation (bot.members.privacy_handlers.ForgetChoice),
# and of the results commentary's review, which checks its own audience (organisers).
OPEN_CALLBACKS = ("fg:", "rc:")


def _command(text: str) -> tuple[str, str]:
    head, _, args = text.strip().partition(" ")
    return head.split("@")[0], args.strip()


def allowed_without_access(event: TelegramObject) -> bool:
    if isinstance(event, Message):
        command, args = _command(event.text or "")
        if command == "/start":
            return args.startswith(PAYLOAD_PREFIX)
        return command in OPEN_COMMANDS
    if isinstance(event, CallbackQuery):
        return (event.data or "").startswith(OPEN_CALLBACKS)
    return False


class AccessMiddleware(BaseMiddleware):
    def __init__(self, translator: Translator) -> None:
        self.translator = translator

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat = data.get("event_chat")
        if chat is not None and chat.type != "private":
            return await handler(event, data)  # the moderation group has rules of its own
        services: UpdateServices = data["services"]
        if services.members.has_access(data.get("member")) or allowed_without_access(event):
            return await handler(event, data)
        text = self.translator.gettext(
            "Cette consultation est réservée aux personnes invitées. Ouvrez le lien "
            "d’invitation reçu des organisateurs."
        )
        if isinstance(event, CallbackQuery):
            await event.answer(text, show_alert=True)
        elif isinstance(event, Message):
            await event.answer(text)
        return None
