"""The outbox: deliveries written with their cause, claimed and settled by the sender."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Delivery, Instance, OutboxMedia
from storage.repositories.cards import CardRepository
from storage.upsert import insert_for

OPEN = ("pending", "sending")
ALBUM_SUFFIX = ".album"


def album_items(media: OutboxMedia) -> list[int] | None:
    """The photos' media ids when this media row is an album, else None."""
    if not media.filename.endswith(ALBUM_SUFFIX):
        return None
    return [int(i) for i in json.loads(media.data)]


def album_size(filename: str) -> int:
    """The photos of an album media row, from its name ("album-N.album", see add_album)."""
    return int(filename[len("album-") : -len(ALBUM_SUFFIX)])


@dataclass(frozen=True)
class NewDelivery:
    dedupe_key: str
    topic: str
    chat_id: int
    text: str | None = None
    media_id: int | None = None
    reply_markup: str | None = None
    is_group: bool = False
    # A moderation card: the ideas and comments its buttons act on, as ("idea" | "comment",
    # id). Recorded with the delivery (storage/repositories/cards.py).
    cards: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class RecentSend:
    chat_id: int
    is_group: bool
    weight: int
    sent_at: datetime | None  # None: it may have been sent (claimed, then a crash)


@dataclass(frozen=True)
class BroadcastProgress:
    topic: str
    counts: dict[str, int]  # status -> deliveries
    # Messages (as Telegram counts them) to send before this broadcast's last one has gone:
    # its own and those queued before it (the outbox sends the oldest first).
    ahead: int
    per_chat: int  # the most messages one of its chats still waits for
    latest_due: datetime | None  # the latest next attempt of its open deliveries (retries)

    @property
    def open(self) -> int:
        return sum(n for status, n in self.counts.items() if status in OPEN)


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_media(self, filename: str, data: bytes, file_id: str | None = None) -> int:
        """A file to send to many chats; `file_id` when Telegram already holds it."""
        media = OutboxMedia(filename=filename, data=data, file_id=file_id)
        self.session.add(media)
        await self.session.flush()
        return media.id

    async def add_album(self, media_ids: list[int]) -> int:
        """An album (sendMediaGroup) of photos added with add_media: a media row whose data
        lists them, so a delivery still points at one media row."""
        return await self.add_media(
            f"album-{len(media_ids)}{ALBUM_SUFFIX}", json.dumps(media_ids).encode()
        )

    async def media_named(self, names: Collection[str]) -> dict[str, int]:
        """Media rows added before under these names (the first of each name)."""
        rows = await self.session.execute(
            select(OutboxMedia.filename, func.min(OutboxMedia.id))
            .where(OutboxMedia.filename.in_(list(names)))
            .group_by(OutboxMedia.filename)
        )
        return {name: media_id for name, media_id in rows}

    async def album_of(self, media_ids: list[int]) -> int | None:
        """The album row (add_album) of exactly these photos, in this order, if there is one."""
        return await self.session.scalar(
            select(func.min(OutboxMedia.id)).where(
                OutboxMedia.filename == f"album-{len(media_ids)}{ALBUM_SUFFIX}",
                OutboxMedia.data == json.dumps(media_ids).encode(),
            )
        )

    async def enqueue(self, items: Iterable[NewDelivery], now: datetime) -> int:
        """Insert deliveries, ignoring those already queued (same dedupe key); returns how many
        were offered."""
        items = list(items)
        weights = await self._album_sizes({i.media_id for i in items if i.media_id is not None})
        rows: list[dict[str, Any]] = [
            {
                **{k: v for k, v in item.__dict__.items() if k != "cards"},
                "weight": weights.get(item.media_id, 1) if item.media_id is not None else 1,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for item in items
        ]
        if not rows:
            return 0
        insert = insert_for(self._dialect())
        for start in range(0, len(rows), 500):
            statement = insert(Delivery).on_conflict_do_nothing(index_elements=["dedupe_key"])
            await self.session.execute(statement, rows[start : start + 500])
        if any(item.cards for item in items):
            await CardRepository(self.session).record(
                {item.dedupe_key: item.cards for item in items if item.cards}
            )
        return len(rows)

    async def _album_sizes(self, media_ids: Collection[int]) -> dict[int, int]:
        """Album media id -> its number of photos (each counts as a message for Telegram)."""
        if not media_ids:
            return {}
        rows = await self.session.execute(
            select(OutboxMedia.id, OutboxMedia.filename).where(
                OutboxMedia.id.in_(list(media_ids)), OutboxMedia.filename.endswith(ALBUM_SUFFIX)
            )
        )
        return {media_id: album_size(name) for media_id, name in rows}

    async def release_orphans(self, legacy_before: datetime) -> int:
        """Claims whose instance is gone (no longer registered) go back to pending; so do
        claims without an owner (made before owners existed) older than `legacy_before`."""
        live = select(Instance.token)
        result = await self.session.execute(
            update(Delivery)
            .where(
                Delivery.status == "sending",
                or_(
                    and_(Delivery.claimed_by.is_(None), Delivery.claimed_at < legacy_before),
                    and_(Delivery.claimed_by.is_not(None), Delivery.claimed_by.not_in(live)),
                ),
            )
            .values(status="pending", claimed_by=None)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount or 0

    async def release_lost(
        self, owner: str, keep: Collection[int], claimed_before: datetime
    ) -> int:
        """This instance's own claims that it no longer tracks (a settle that failed), once
        they are old enough not to be a claim committed a moment ago."""
        query = update(Delivery).where(
            Delivery.status == "sending",
            Delivery.claimed_by == owner,
            Delivery.claimed_at < claimed_before,
        )
        if keep:
            query = query.where(Delivery.id.not_in(list(keep)))
        result = await self.session.execute(
            query.values(status="pending", claimed_by=None).execution_options(
                synchronize_session=False
            )
        )
        return result.rowcount or 0

    async def release_owner(self, owner: str) -> int:
        """At a clean shutdown: what this instance claimed and did not send goes back."""
        result = await self.session.execute(
            update(Delivery)
            .where(Delivery.status == "sending", Delivery.claimed_by == owner)
            .values(status="pending", claimed_by=None)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount or 0

    async def claim_due(
        self, now: datetime, limit: int, owner: str, exclude: Sequence[int] = ()
    ) -> list[Delivery]:
        """The oldest due delivery of each chat, claimed (status 'sending') by `owner`."""
        earlier = aliased(Delivery)
        query = (
            select(Delivery.id)
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
        if self._dialect() == "postgresql":
            # Several instances claim at once: each skips the rows another is claiming,
            # instead of waiting for them and coming back empty-handed.
            query = query.with_for_update(skip_locked=True, of=Delivery)
        ids = list((await self.session.scalars(query)).all())
        if not ids:
            return []
        # Conditional update: with several instances, each row is claimed by one of them.
        await self.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == "pending")
            .values(status="sending", claimed_at=now, claimed_by=owner)
            .execution_options(synchronize_session=False)
        )
        claimed = await self.session.scalars(
            select(Delivery)
            .where(
                Delivery.id.in_(ids),
                Delivery.claimed_by == owner,
                Delivery.claimed_at == now,
                Delivery.status == "sending",
            )
            .order_by(Delivery.id)
            .execution_options(populate_existing=True)
        )
        return list(claimed.all())

    def _dialect(self) -> str:
        return self.session.bind.dialect.name if self.session.bind else "sqlite"

    async def settle(self, delivery_id: int, **values: Any) -> None:
        await self.session.execute(
            update(Delivery).where(Delivery.id == delivery_id).values(**values)
        )

    async def settle_sent(self, sent: Sequence[tuple[int, datetime, int]]) -> None:
        """(delivery id, sent at, message id) of rows sent: one statement run for all of
        them (executemany). An ORM update per row cost the sender a sixth of its time."""
        table = Delivery.__table__
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(
                status="sent", sent_at=bindparam("at"), message_id=bindparam("message"), error=None
            )
        )
        await self.session.execute(
            statement, [{"row_id": i, "at": at, "message": message} for i, at, message in sent]
        )

    async def retry_later(
        self,
        delivery_id: int,
        at: datetime,
        error: str,
        count: bool,
        failing_since: datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": "pending",
            "next_attempt_at": at,
            "error": error[:255],
            "claimed_by": None,
        }
        if failing_since is not None:
            values["failing_since"] = failing_since
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

    async def postpone(self, delivery_id: int, owner: str, at: datetime) -> None:
        """A claimed delivery goes back to the queue, due at `at` (its chat is not ready)."""
        await self.session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.status == "sending",
                Delivery.claimed_by == owner,
            )
            .values(status="pending", next_attempt_at=at, claimed_by=None)
        )

    async def recent_sends(self, since: datetime) -> list[RecentSend]:
        """What went to chats since `since` (sent), and what was claimed since and is queued
        again (in flight at a crash: it may have reached the chat)."""
        rows = await self.session.execute(
            select(Delivery.chat_id, Delivery.is_group, Delivery.weight, Delivery.sent_at).where(
                or_(
                    and_(Delivery.status == "sent", Delivery.sent_at >= since),
                    and_(Delivery.status == "pending", Delivery.claimed_at >= since),
                )
            )
        )
        return [RecentSend(*row) for row in rows]

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

    async def open_weight(self) -> int:
        """Messages (as Telegram counts them) waiting to be sent."""
        total = await self.session.scalar(
            select(func.sum(Delivery.weight)).where(Delivery.status.in_(OPEN))
        )
        return int(total or 0)

    async def broadcasts(self, since: datetime) -> list[BroadcastProgress]:
        """Broadcasts (topics "kind:name": results, announcements, reminders, digests) still
        sending or queued since `since`, oldest first."""
        rows = await self.session.execute(
            select(
                Delivery.topic,
                Delivery.status,
                func.count(),
                func.sum(Delivery.weight),
                func.min(Delivery.id),
                func.max(Delivery.id),
                func.max(Delivery.created_at),
                func.max(Delivery.next_attempt_at),
            )
            .where(Delivery.topic.contains(":"))
            .group_by(Delivery.topic, Delivery.status)
        )
        found: dict[str, dict[str, Any]] = {}
        for topic, status, n, weight, first, last, created, due in rows:
            entry = found.setdefault(
                topic, {"counts": {}, "first": first, "created": created, "open": None}
            )
            entry["counts"][status] = n
            entry["first"] = min(entry["first"], first)
            entry["created"] = max(entry["created"], created)
            if status in OPEN:
                last_open, w, latest_due = entry["open"] or (0, 0, due)
                entry["open"] = (max(last_open, last), w + int(weight or 0), max(latest_due, due))
        out = []
        for topic, entry in sorted(found.items(), key=lambda kv: kv[1]["first"]):
            if entry["open"] is None and entry["created"] < since:
                continue
            ahead = per_chat = 0
            latest_due = None
            if entry["open"] is not None:
                last_open, _, latest_due = entry["open"]
                ahead = await self._open_weight_up_to(last_open)
                per_chat = await self._most_open_per_chat(topic)
            out.append(BroadcastProgress(topic, entry["counts"], ahead, per_chat, latest_due))
        return out

    async def _open_weight_up_to(self, delivery_id: int) -> int:
        total = await self.session.scalar(
            select(func.sum(Delivery.weight)).where(
                Delivery.status.in_(OPEN), Delivery.id <= delivery_id
            )
        )
        return int(total or 0)

    async def _most_open_per_chat(self, topic: str) -> int:
        per_chat = (
            select(func.sum(Delivery.weight).label("w"))
            .where(Delivery.topic == topic, Delivery.status.in_(OPEN))
            .group_by(Delivery.chat_id)
            .subquery()
        )
        return int(await self.session.scalar(select(func.max(per_chat.c.w))) or 0)

    async def next_due(self) -> datetime | None:
        return await self.session.scalar(
            select(func.min(Delivery.next_attempt_at)).where(Delivery.status == "pending")
        )

    async def delivery(self, dedupe_key: str) -> Delivery | None:
        return await self.session.scalar(select(Delivery).where(Delivery.dedupe_key == dedupe_key))

    async def failed(self, limit: int | None = None) -> list[Delivery]:
        """Deliveries that failed for good, newest first (what organisers may re-queue)."""
        query = select(Delivery).where(Delivery.status == "failed").order_by(Delivery.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return list((await self.session.scalars(query)).all())

    async def requeue_failed(self, now: datetime, ids: Collection[int] | None = None) -> int:
        """Failed deliveries (all, or those ids) pending again, with a fresh retry budget."""
        query = update(Delivery).where(Delivery.status == "failed")
        if ids is not None:
            query = query.where(Delivery.id.in_(list(ids)))
        result = await self.session.execute(
            query.values(
                status="pending",
                attempts=0,
                failing_since=None,
                next_attempt_at=now,
                claimed_by=None,
            ).execution_options(synchronize_session=False)
        )
        return result.rowcount or 0


MAX_BACKOFF = timedelta(minutes=5)


async def delete_chat_deliveries(session: AsyncSession, chat_id: int) -> int:
    """Every delivery to one chat, whatever its status (an erased member's)."""
    result = await session.execute(delete(Delivery).where(Delivery.chat_id == chat_id))
    return result.rowcount or 0


async def deliveries_quoting(session: AsyncSession, fragments: Sequence[str]) -> list[Delivery]:
    """Deliveries whose text contains any of the fragments (exact substrings)."""
    fragments = [f for f in fragments if f]
    if not fragments:
        return []
    rows = await session.scalars(
        select(Delivery).where(
            or_(*(Delivery.text.contains(f, autoescape=True) for f in fragments))
        )
    )
    return list(rows.all())


async def withdraw_delivery(session: AsyncSession, delivery_id: int, text: str) -> None:
    """Not sent yet: cancelled for good; sent or failed: its copy of the text is replaced."""
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status.in_(OPEN))
        .values(status="cancelled")
    )
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(text=text, reply_markup=None, error=None)
    )


async def replace_delivery_text(session: AsyncSession, delivery_id: int, text: str) -> None:
    await session.execute(update(Delivery).where(Delivery.id == delivery_id).values(text=text))


def backoff(attempts: int) -> timedelta:
    """2, 4, 8 … seconds, never more than 5 minutes between two tries."""
    return min(MAX_BACKOFF, timedelta(seconds=2 ** min(attempts, 9)))
