"""Running bot processes and their heartbeats: who owns outbox claims, who is gone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Instance


class InstanceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def register(self, token: str, name: str, now: datetime) -> list[str]:
        """Add this process; returns the tokens it replaces (same name: a restart of it)."""
        replaced = list(
            (await self.session.scalars(select(Instance.token).where(Instance.name == name))).all()
        )
        if replaced:
            await self.session.execute(delete(Instance).where(Instance.token.in_(replaced)))
        self.session.add(Instance(token=token, name=name, started_at=now, heartbeat_at=now))
        await self.session.flush()
        return replaced

    async def beat(self, token: str, name: str, now: datetime) -> bool:
        """Heartbeat; False (and registered again) if another instance had declared us gone."""
        result = await self.session.execute(
            update(Instance).where(Instance.token == token).values(heartbeat_at=now)
        )
        if (result.rowcount or 0) == 1:
            return True
        self.session.add(Instance(token=token, name=name, started_at=now, heartbeat_at=now))
        await self.session.flush()
        return False

    async def retire(self, token: str) -> None:
        await self.session.execute(delete(Instance).where(Instance.token == token))

    async def forget_dead(self, alive_after: datetime) -> list[str]:
        """Tokens whose heartbeat stopped before `alive_after`, removed."""
        dead = list(
            (
                await self.session.scalars(
                    select(Instance.token).where(Instance.heartbeat_at < alive_after)
                )
            ).all()
        )
        if dead:
            await self.session.execute(delete(Instance).where(Instance.token.in_(dead)))
        return dead

    async def alive(self, alive_after: datetime) -> int:
        return (
            await self.session.scalar(
                select(func.count())
                .select_from(Instance)
                .where(Instance.heartbeat_at >= alive_after)
            )
            or 0
        )
