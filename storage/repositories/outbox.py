"""The outbox: deliveries written with their cause, claimed and settled by the sender."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Delivery, OutboxMedia

OPEN = ("pending", "sending")


@dataclass(frozen=True)
class NewDelivery:
    dedupe_key: str
    topic: str
    chat_id: int
    text: str | None = None
    media_id: int | None = None
    reply_markup: str | None = None
    is_group: bool = False


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_media(self, filename: str, data: bytes) -> int:
        media = OutboxMedia(filename=filename, data=data)
        self.session.add(media)
        await self.session.flush()
        return media.id

    async def enqueue(self, items: Iterable[NewDelivery], now: datetime) -> int:
        """Insert deliveries, ignoring those already queued (same dedupe key); returns how many
        were offered."""
        rows: list[dict[str, Any]] = [
            {
                **item.__dict__,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for item in items
        ]
        if not rows:
            return 0
        dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        for start in range(0, len(rows), 500):
            statement = insert(Delivery).on_conflict_do_nothing(index_elements=["dedupe_key"])
            await self.session.execute(statement, rows[start : start + 500])
        return len(rows)

    async def release_stale(self, older_than: datetime) -> int:
        """Claims left by a crashed sender go back to pending (they may be sent again)."""
        result = await self.session.execute(
            update(Delivery)
            .where(Delivery.status == "sending", Delivery.claimed_at < older_than)
            .values(status="pending")
        )
        return result.rowcount or 0

    async def claim_due(
        self, now: datetime, limit: int, exclude: Sequence[int] = ()
    ) -> list[Delivery]:
        """The oldest due delivery of each chat, claimed (status 'sending') for this sender."""
        earlier = aliased(Delivery)
        query = (
            select(Delivery)
            .where(
                Delivery.status == "pending",
                Delivery.next_attempt_at <= now,
                ~exists().where(
                    and_(
                        earlier.chat_id == Delivery.chat_id,
                        earlier.id < Delivery.id,
                        earlier.status.in_(OPEN),
                    )
                ),
            )
            .order_by(Delivery.id)
            .limit(limit)
        )
        if exclude:
            query = query.where(Delivery.chat_id.not_in(list(exclude)))
        candidates = list((await self.session.scalars(query)).all())
        if not candidates:
            return []
        # Conditional update: with several instances, each row is claimed by one of them.
        ids = [c.id for c in candidates]
        await self.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == "pending")
            .values(status="sending", claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        claimed = await self.session.scalars(
            select(Delivery)
            .where(Delivery.id.in_(ids), Delivery.claimed_at == now, Delivery.status == "sending")
            .order_by(Delivery.id)
            .execution_options(populate_existing=True)
        )
        return list(claimed.all())

    async def settle(self, delivery_id: int, **values: Any) -> None:
        await self.session.execute(
            update(Delivery).where(Delivery.id == delivery_id).values(**values)
        )

    async def retry_later(self, delivery_id: int, at: datetime, error: str, count: bool) -> None:
        values: dict[str, Any] = {"status": "pending", "next_attempt_at": at, "error": error[:255]}
        if count:
            values["attempts"] = Delivery.attempts + 1
        await self.settle(delivery_id, **values)

    async def block_chat(self, chat_id: int, error: str) -> None:
        await self.session.execute(
            update(Delivery)
            .where(Delivery.chat_id == chat_id, Delivery.status.in_(OPEN))
            .values(status="blocked", error=error[:255])
        )

    async def move_chat(
        self, old_chat_id: int, new_chat_id: int, now: datetime, claimed: int | None = None
    ) -> int:
        """A group became a supergroup: what waits for it goes to its new id, due now; so
        does `claimed`, the delivery that learnt it (a 400 with migrate_to_chat_id)."""
        waiting = Delivery.status == "pending"
        if claimed is not None:
            waiting = waiting | (Delivery.id == claimed)
        result = await self.session.execute(
            update(Delivery)
            .where(Delivery.chat_id == old_chat_id, waiting)
            .values(chat_id=new_chat_id, status="pending", next_attempt_at=now)
        )
        return result.rowcount or 0

    async def media(self, media_id: int) -> OutboxMedia | None:
        return await self.session.get(OutboxMedia, media_id)

    async def set_file_id(self, media_id: int, file_id: str) -> None:
        await self.session.execute(
            update(OutboxMedia).where(OutboxMedia.id == media_id).values(file_id=file_id)
        )

    async def counts(self, topic_prefix: str | None = None) -> dict[str, int]:
        query = select(Delivery.status, func.count()).group_by(Delivery.status)
        if topic_prefix:
            query = query.where(Delivery.topic.startswith(topic_prefix))
        return {status: n for status, n in await self.session.execute(query)}

    async def next_due(self) -> datetime | None:
        return await self.session.scalar(
            select(func.min(Delivery.next_attempt_at)).where(Delivery.status == "pending")
        )

    async def delivery(self, dedupe_key: str) -> Delivery | None:
        return await self.session.scalar(select(Delivery).where(Delivery.dedupe_key == dedupe_key))


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(300, 2 ** min(attempts, 8)))
