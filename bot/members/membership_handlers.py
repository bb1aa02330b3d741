"""The bot's own membership in private chats: a member who blocks the bot is marked blocked."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import KICKED, MEMBER, ChatMemberUpdatedFilter
from aiogram.types import ChatMemberUpdated
from sqlalchemy.ext.asyncio import AsyncSession

from bot.telegram.filters import PrivateChat
from storage.repositories.members import MemberRepository
from storage.repositories.outbox import OutboxRepository


async def blocked(event: ChatMemberUpdated, session: AsyncSession) -> None:
    await MemberRepository(session).set_blocked(event.from_user.id, True)
    await OutboxRepository(session).block_chat(event.chat.id, "blocked by the user")
    await session.commit()


async def unblocked(event: ChatMemberUpdated, session: AsyncSession) -> None:
    await MemberRepository(session).set_blocked(event.from_user.id, False)
    await session.commit()


def build_router() -> Router:
    r = Router(name="membership")
    r.my_chat_member.filter(PrivateChat())
    r.my_chat_member.register(blocked, ChatMemberUpdatedFilter(member_status_changed=KICKED))
    r.my_chat_member.register(unblocked, ChatMemberUpdatedFilter(member_status_changed=MEMBER))
    return r
