"""Recorded phase transitions: the unique key is what makes each happen exactly once. A
transition that raised is recorded as failed and taken again when its retry falls due."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import PhaseTransition
from storage.upsert import upsert_for


class TransitionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _insert(self):  # type: ignore[no-untyped-def]
        return upsert_for(self.session)

    async def claim(self, key: str, scheduled_at: datetime, now: datetime) -> bool:
        """Record the transition; False if it was already recorded (by us or another process),
        unless it failed and its retry is due: then this run takes it over."""
        result = await self.session.execute(
            self._insert()(PhaseTransition)
            .values(key=key, scheduled_at=scheduled_at, done_at=now, outcome="done", status="done")
            .on_conflict_do_nothing(index_elements=["key"])
        )
        if (result.rowcount or 0) == 1:
            return True
        # Conditional update: of several instances retrying at once, one wins the row.
        retried = await self.session.execute(
            update(PhaseTransition)
            .where(
                PhaseTransition.key == key,
                PhaseTransition.status == "failed",
                PhaseTransition.next_attempt_at <= now,
            )
            .values(status="done", done_at=now, scheduled_at=scheduled_at)
            .execution_options(synchronize_session=False)
        )
        return (retried.rowcount or 0) == 1

    async def set_outcome(self, key: str, outcome: str) -> None:
        await self.session.execute(
            update(PhaseTransition)
            .where(PhaseTransition.key == key)
            .values(outcome=outcome[:32], status="done", next_attempt_at=None, error=None)
            .execution_options(synchronize_session=False)
        )

    async def record_failure(
        self, key: str, scheduled_at: datetime, now: datetime, error: str, retry_at: datetime
    ) -> int:
        """The transition raised (its own transaction was rolled back): how many times now."""
        record = await self.session.get(PhaseTransition, key)
        if record is None:
            record = PhaseTransition(key=key, scheduled_at=scheduled_at, done_at=now, attempts=0)
            self.session.add(record)
        record.status = "failed"
        record.outcome = "failed"
        record.attempts = (record.attempts or 0) + 1
        record.error = error[:255]
        record.next_attempt_at = retry_at
        await self.session.flush()
        return record.attempts

    async def all(self) -> dict[str, PhaseTransition]:
        rows = await self.session.scalars(select(PhaseTransition))
        return {r.key: r for r in rows}

    async def failed(self) -> list[PhaseTransition]:
        rows = await self.session.scalars(
            select(PhaseTransition)
            .where(PhaseTransition.status == "failed")
            .order_by(PhaseTransition.scheduled_at)
        )
        return list(rows.all())
