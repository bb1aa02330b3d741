"""Quota events: what a member did, counted per period, without saying who they are."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import QuotaEvent


class QuotaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count(self, actor: str, kind: str, since: datetime) -> int:
        query = select(func.count()).where(
            QuotaEvent.actor == actor, QuotaEvent.kind == kind, QuotaEvent.at > since
        )
        return await self.session.scalar(query) or 0

    async def record(self, actor: str, kind: str, at: datetime, forget_before: datetime) -> None:
        """Count one event; events too old to count for any quota are deleted meanwhile."""
        await self.session.execute(delete(QuotaEvent).where(QuotaEvent.at < forget_before))
        self.session.add(QuotaEvent(actor=actor, kind=kind, at=at))
