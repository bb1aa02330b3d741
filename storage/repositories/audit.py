"""The audit log: who did what, when, on what."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        at: datetime,
        action: str,
        actor_id: int | None = None,
        actor_name: str | None = None,
        target: str | None = None,
        target_id: object = None,
        detail: str | None = None,
    ) -> None:
        self.session.add(
            AuditEntry(
                at=at,
                action=action[:32],
                actor_id=actor_id,
                actor_name=actor_name[:128] if actor_name else None,
                target=target,
                target_id=None if target_id is None else str(target_id)[:64],
                detail=detail[:255] if detail else None,
            )
        )

    async def since(self, start: datetime | None, limit: int | None = None) -> list[AuditEntry]:
        where = [AuditEntry.at >= start] if start is not None else []
        query = select(AuditEntry).where(*where).order_by(AuditEntry.at, AuditEntry.id)
        if limit is not None:
            # The latest `limit`, still listed oldest first.
            latest = (
                select(AuditEntry.id)
                .where(*where)
                .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                .limit(limit)
            )
            query = query.where(AuditEntry.id.in_(latest))
        return list((await self.session.scalars(query)).all())

    async def forget_actor(self, member_id: int) -> None:
        """An erased member's name and id leave the log; what was done stays."""
        await self.session.execute(
            update(AuditEntry)
            .where(AuditEntry.actor_id == member_id)
            .values(actor_id=None, actor_name=None)
        )
        # Entries about the member (a role given, an invitation used) name them as the target.
        await self.session.execute(
            update(AuditEntry)
            .where(AuditEntry.target == "member", AuditEntry.target_id == str(member_id))
            .values(target_id=None)
        )
