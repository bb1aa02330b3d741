"""Moderation cards: which outbox delivery carries buttons for which idea or comment. The
delivery holds the chat and message id the card was posted as, once sent."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Delivery, ModerationCard
from storage.upsert import upsert_for


class CardMatch(StrEnum):
    POSTED = "posted"  # this message is one of the target's cards
    SETTLING = "settling"  # a card of the target in this chat is being sent: ask again soon
    OTHER = "other"  # not a card of the target (an older database's, another object's)


class CardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, cards: Mapping[str, Sequence[tuple[str, int]]]) -> None:
        """Link the deliveries with these dedupe keys to the objects their buttons act on."""
        ids = dict(
            (
                await self.session.execute(
                    select(Delivery.dedupe_key, Delivery.id).where(
                        Delivery.dedupe_key.in_(list(cards))
                    )
                )
            ).all()
        )
        rows = [
            {"delivery_id": ids[key], "target": target, "target_id": target_id}
            for key, targets in cards.items()
            if key in ids
            for target, target_id in targets
        ]
        if rows:
            insert = upsert_for(self.session)
            await self.session.execute(
                insert(ModerationCard).on_conflict_do_nothing(
                    index_elements=["delivery_id", "target", "target_id"]
                ),
                rows,
            )

    async def match(self, target: str, target_id: int, chat_id: int, message_id: int) -> CardMatch:
        """Whether the message (chat_id, message_id) was posted as a card of the target."""
        rows = await self.session.execute(
            select(Delivery.chat_id, Delivery.message_id, Delivery.status)
            .join(ModerationCard, ModerationCard.delivery_id == Delivery.id)
            .where(ModerationCard.target == target, ModerationCard.target_id == target_id)
        )
        settling = False
        for chat, message, status in rows:
            if chat == chat_id and message == message_id:
                return CardMatch.POSTED
            # Sent a moment ago, its message id not written yet (the outbox writes them in
            # batches a few milliseconds later).
            settling = settling or (chat == chat_id and status == "sending")
        return CardMatch.SETTLING if settling else CardMatch.OTHER

    async def in_chat(self, target: str, target_id: int, chat_id: int) -> bool:
        """Whether the target has a card for this chat (sent, or still to be sent)."""
        found = await self.session.scalar(
            select(Delivery.id)
            .join(ModerationCard, ModerationCard.delivery_id == Delivery.id)
            .where(
                ModerationCard.target == target,
                ModerationCard.target_id == target_id,
                Delivery.chat_id == chat_id,
            )
            .limit(1)
        )
        return found is not None

    async def deliveries_of(
        self, idea_ids: Collection[int], comment_ids: Collection[int]
    ) -> list[tuple[Delivery, set[tuple[str, int]]]]:
        """Every card carrying a button for one of these ideas or comments (re-sent ones
        too), with all the objects each card acts on."""
        wanted = []
        if idea_ids:
            wanted.append(
                (ModerationCard.target == "idea") & ModerationCard.target_id.in_(list(idea_ids))
            )
        if comment_ids:
            wanted.append(
                (ModerationCard.target == "comment")
                & ModerationCard.target_id.in_(list(comment_ids))
            )
        if not wanted:
            return []
        matching = select(ModerationCard.delivery_id).where(or_(*wanted))
        rows = await self.session.execute(
            select(Delivery, ModerationCard.target, ModerationCard.target_id)
            .join(ModerationCard, ModerationCard.delivery_id == Delivery.id)
            .where(Delivery.id.in_(matching))
            .order_by(Delivery.id)
        )
        found: dict[int, tuple[Delivery, set[tuple[str, int]]]] = {}
        for delivery, target, target_id in rows:
            found.setdefault(delivery.id, (delivery, set()))[1].add((target, target_id))
        return list(found.values())
