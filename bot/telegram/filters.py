"""Filters that run on the event loop.

aiogram awaits a filter only when it is a coroutine or an `aiogram.filters.Filter`; any other
callable — a magic filter such as `F.chat.type == "private"` included — it runs through
`asyncio.to_thread`: a hop to a worker thread and back for a comparison, and under a crowd a
wait for the GIL as long as the switch interval (5 ms) at each hop. A /start went through
six of them.
"""

from __future__ import annotations

from aiogram.enums import ChatType, ContentType
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message
from aiogram_dialog.utils import CB_SEP


class PrivateChat(Filter):
    """The event happened in a private chat with the bot (for a tap: on a message there)."""

    async def __call__(self, event: Message | ChatMemberUpdated | CallbackQuery) -> bool:
        if isinstance(event, CallbackQuery):
            return event.message is not None and event.message.chat.type == ChatType.PRIVATE
        return event.chat.type == ChatType.PRIVATE


class IsText(Filter):
    """The message is a text."""

    async def __call__(self, event: Message) -> bool:
        return event.content_type == ContentType.TEXT


class GroupMigrated(Filter):
    """A group's service message: it became a supergroup (or was one made from it)."""

    async def __call__(self, event: Message) -> bool:
        return bool(event.migrate_to_chat_id or event.migrate_from_chat_id) and (
            event.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
        )


def is_dialog_data(data: str | None) -> bool:
    """A dialog's button: aiogram-dialog's callback data holds its intent id and a separator
    no other button of the bot uses (aiogram_dialog.utils.CB_SEP)."""
    return CB_SEP in (data or "")


class NotDialogTap(Filter):
    """The tap is not on a dialog's button (`is_dialog_data`)."""

    async def __call__(self, event: CallbackQuery) -> bool:
        return not is_dialog_data(event.data)
