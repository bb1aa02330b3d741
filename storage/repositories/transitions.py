"""Recorded phase transitions: the unique key is what makes each happen exactly once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import PhaseTransition


class TransitionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, key: str, scheduled_at: datetime, now: datetime) -> bool:
        """Record the transition; False if it was already recorded (by us or another process)."""
        dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        result = await self.session.execute(
            insert(PhaseTransition)
            .values(key=key, scheduled_at=scheduled_at, done_at=now, outcome="done")
            .on_conflict_do_nothing(index_elements=["key"])
        )
        return (result.rowcount or 0) == 1

    async def set_outcome(self, key: str, outcome: str) -> None:
        record = await self.session.get(PhaseTransition, key)
        if record is not None:
            record.outcome = outcome

    async def all(self) -> dict[str, PhaseTransition]:
        rows = await self.session.scalars(select(PhaseTransition))
        return {r.key: r for r in rows}
