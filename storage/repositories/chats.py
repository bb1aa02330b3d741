"""Chats that changed id: a group upgraded to a supergroup keeps its members under a new id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ChatMigration
from storage.upsert import upsert_for

MAX_HOPS = 8  # a group migrates once; a loop in the data must not hang us


class ChatRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_migration(self, old_chat_id: int, new_chat_id: int, now: datetime) -> bool:
        """Remember old -> new; False when it was known already (both service messages and
        the 400 answer report the same upgrade)."""
        if old_chat_id == new_chat_id:
            return False
        if await self.session.get(ChatMigration, old_chat_id) is not None:
            return False
        insert = upsert_for(self.session)
        result = await self.session.execute(
            insert(ChatMigration)
            .values(old_chat_id=old_chat_id, new_chat_id=new_chat_id, migrated_at=now)
            .on_conflict_do_nothing(index_elements=["old_chat_id"])
        )
        return (result.rowcount or 0) == 1

    async def current_id(self, chat_id: int) -> int:
        """The chat's id today, following its upgrades."""
        for _ in range(MAX_HOPS):
            newer = await self.session.scalar(
                select(ChatMigration.new_chat_id).where(ChatMigration.old_chat_id == chat_id)
            )
            if newer is None:
                return chat_id
            chat_id = newer
        return chat_id
