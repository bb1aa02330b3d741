"""The results commentary: its draft, the organisers' edits and the approval, each a
conditional update on the version the organiser saw (a stale button changes nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ResultsCommentary
from storage.upsert import upsert_for


@dataclass(frozen=True)
class CommentaryRecord:
    version: int
    texts: dict[str, str]  # language -> HTML
    written: dict[str, int]  # language -> the version that last wrote its text
    status: str  # draft | approved
    edited_at: datetime | None
    approved_at: datetime | None

    @property
    def approved(self) -> bool:
        return self.status == "approved"


def _record(row: ResultsCommentary) -> CommentaryRecord:
    return CommentaryRecord(
        row.version,
        dict(row.texts or {}),
        dict(row.written or {}),
        row.status,
        row.edited_at,
        row.approved_at,
    )


class CommentaryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _key(self, consultation_id: str, phase_id: str) -> tuple[object, ...]:
        return (
            ResultsCommentary.consultation_id == consultation_id,
            ResultsCommentary.phase_id == phase_id,
        )

    async def get(
        self, consultation_id: str, phase_id: str, lock: bool = False
    ) -> CommentaryRecord | None:
        """`lock`: hold the row until the transaction ends (PostgreSQL; SQLite has one writer
        anyway), so that an approval and the results broadcast see each other."""
        query = select(ResultsCommentary).where(*self._key(consultation_id, phase_id))
        if lock:
            query = query.with_for_update()
        row = (await self.session.scalars(query.execution_options(populate_existing=True))).first()
        return _record(row) if row is not None else None

    async def create(
        self, consultation_id: str, phase_id: str, texts: Mapping[str, str], now: datetime
    ) -> bool:
        """The file's draft as version 1; False when there is one already."""
        result = await self.session.execute(
            upsert_for(self.session)(ResultsCommentary)
            .values(
                consultation_id=consultation_id,
                phase_id=phase_id,
                version=1,
                texts=dict(texts),
                written={lang: 1 for lang in texts},
                status="draft",
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["consultation_id", "phase_id"])
        )
        return (result.rowcount or 0) == 1

    async def revise(
        self,
        consultation_id: str,
        phase_id: str,
        seen_version: int,
        texts: Mapping[str, str],
        now: datetime,
    ) -> int | None:
        """Replace the texts given (others are kept) of the draft the organiser saw; the new
        version, or None when that draft is no longer the current one (edited or approved)."""
        current = await self.get(consultation_id, phase_id)
        if current is None or current.approved or current.version != seen_version:
            return None
        version = seen_version + 1
        merged = {**current.texts, **texts}
        written = {**current.written, **{lang: version for lang in texts}}
        result = await self.session.execute(
            update(ResultsCommentary)
            .where(
                *self._key(consultation_id, phase_id),
                ResultsCommentary.version == seen_version,
                ResultsCommentary.status == "draft",
            )
            .values(version=version, texts=merged, written=written, edited_at=now)
            .execution_options(synchronize_session=False)
        )
        return version if (result.rowcount or 0) == 1 else None

    async def approve(
        self, consultation_id: str, phase_id: str, seen_version: int, now: datetime
    ) -> bool:
        """Approve the version the organiser saw; False when it is no longer the draft."""
        result = await self.session.execute(
            update(ResultsCommentary)
            .where(
                *self._key(consultation_id, phase_id),
                ResultsCommentary.version == seen_version,
                ResultsCommentary.status == "draft",
            )
            .values(status="approved", approved_at=now)
            .execution_options(synchronize_session=False)
        )
        return (result.rowcount or 0) == 1
