"""Loads (or registers) the member behind an update and sets the interface language."""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Chat, TelegramObject, User
from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Role
from bot.context import AppContext
from bot.i18n import Translator, pick_language
from bot.members.invitations import PAYLOAD_PREFIX
from bot.telegram.middlewares import Handler
from storage.repositories.members import MemberRepository

# Asking what we hold, or for help, must not make us hold something.
READ_ONLY_COMMANDS = ("/mydata", "/forget", "/help")


def _registers(event: TelegramObject, app: AppContext, user_id: int) -> bool:
    """Only a message the person sent us makes us hold data about them: never a button of an
    old message, a membership change (blocking the bot after /forget), nor /mydata or /help.
    In an invitation-only consultation, only an invitation link (or an organiser) does."""
    message = getattr(event, "message", None)
    if message is None:
        return False
    text = (message.text or "").strip()
    command = text.split(" ")[0].split("@")[0]
    if command in READ_ONLY_COMMANDS:
        return False
    if app.consultation.access == "open" or app.is_admin(user_id):
        return True
    return command == "/start" and text.partition(" ")[2].strip().startswith(PAYLOAD_PREFIX)


class MemberMiddleware(BaseMiddleware):
    def __init__(self, app: AppContext, translator: Translator) -> None:
        self.app = app
        self.translator = translator

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        app = self.app
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        lang = pick_language([user.language_code if user else None], app.languages)
        data["member"] = None
        if user is not None and not user.is_bot:
            session: AsyncSession = data["session"]
            repo = MemberRepository(session)
            private = chat is None or chat.type == "private"
            member = await repo.load(user.id)
            if member is None and private and _registers(event, app, user.id):
                # Telegram's language is a good first guess; /language changes it.
                role = Role.AMBASSADOR if app.consultation.access == "open" else None
                member = await repo.register(user.id, user.first_name, lang, role, app.clock())
            elif member is not None and member.blocked and private:
                # A member writing to us has evidently unblocked the bot.
                await repo.set_blocked(member.id, False)
                await session.commit()
                member.blocked = False
            if member is not None and member.language in app.languages:
                lang = member.language
            data["member"] = member
        data["lang"] = lang or app.consultation.source_language
        data["lang_chosen"] = lang is not None
        with self.translator.use(data["lang"]):
            return await handler(event, data)
