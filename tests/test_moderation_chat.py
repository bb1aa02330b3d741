"""Moderation cards that reach the group: the supergroup migration followed, ideas carded once
a group is configured, and /pending's button that sends a card again."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiogram.exceptions import TelegramMigrateToChat
from aiogram.methods import GetChatAdministrators, SendMessage, TelegramMethod
from aiogram.types import Chat, Message, Update, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.ideas.cards import card_waiting_ideas
from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.dialog_state.sql_storage import SQLStorage
from storage.repositories.chats import ChatRepository
from storage.repositories.members import MemberRepository
from storage.repositories.outbox import NewDelivery, OutboxRepository
from tests.test_dialogs import Clock, Harness, RecordingBot, button
from tests.test_ideas_dialogs import (
    MOD_CHAT,
    NOW,
    add_member,
    deliveries,
    idea_row,
    make_app,
    seed_idea,
)
from tests.test_member_safety import mark_sent
from tests.test_outbox import ScriptedBot, run_outbox, statuses

SUPERGROUP = -1001234567890
UPGRADED = "Bad Request: group chat was upgraded to a supergroup chat"


class GroupBot(RecordingBot):
    """RecordingBot whose moderation group has no administrators but the organisers."""

    async def __call__(
        self, method: TelegramMethod[Any], request_timeout: int | None = None
    ) -> Any:
        if isinstance(method, GetChatAdministrators):
            self.calls.append(method)
            return []
        return await super().__call__(method, request_timeout)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'mod.db'}"
    await upgrade_async(url)
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    clock = Clock(NOW)
    w = make_app(tmp_path, sessionmaker, clock)
    yield Harness(w.app, w.services, SQLStorage(sessionmaker), clock, bot=GroupBot())
    await engine.dispose()


async def current_chat(sessionmaker: async_sessionmaker[AsyncSession], chat_id: int) -> int:
    async with sessionmaker() as session:
        return await ChatRepository(session).current_id(chat_id)


async def submit_idea(h: Harness, author: int, title: str) -> int:
    async with h.services.sessionmaker() as session:
        member = await MemberRepository(session).get(author)
        assert member is not None
        idea = await h.use(session).ideas.submit(member, "inclusion", title, "Un texte.")
        return idea.id


async def group_update(h: Harness, dp: Any, chat_id: int, update_id: int, **content: Any) -> None:
    message = Message(
        message_id=update_id,
        date=NOW,
        chat=Chat(id=chat_id, type="supergroup" if chat_id == SUPERGROUP else "group"),
        from_user=User(id=1, is_bot=False, first_name="Mia"),
        **content,
    )
    await dp.feed_update(h.bot, Update(update_id=update_id, message=message))


# --------------------------------------------------------------- supergroup migration


async def test_outbox_follows_a_group_upgraded_to_a_supergroup(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    method = SendMessage(chat_id=MOD_CHAT, text="x")
    bot = ScriptedBot({MOD_CHAT: [TelegramMigrateToChat(method, UPGRADED, SUPERGROUP)]})
    async with sessionmaker() as session:
        await OutboxRepository(session).enqueue(
            [
                NewDelivery(f"card{i}", "moderation", MOD_CHAT, text=f"card {i}", is_group=True)
                for i in (1, 2)
            ],
            datetime.now(UTC),
        )
        await session.commit()

    async def settled() -> bool:
        return set((await statuses(sessionmaker)).values()) == {"sent"}

    await run_outbox(sessionmaker, bot, settled)
    assert bot.sent == [(SUPERGROUP, "card 1"), (SUPERGROUP, "card 2")]
    assert await current_chat(sessionmaker, MOD_CHAT) == SUPERGROUP


@pytest.mark.parametrize("told_in", ["old group", "new supergroup"])
async def test_migration_message_moves_the_moderation_group(h: Harness, told_in: str) -> None:
    await add_member(h.services.sessionmaker, 7, "Anne")
    before = await submit_idea(h, 7, "Avant la migration")
    dp = h.dispatcher()
    # Some other group's upgrade is none of our business.
    await group_update(h, dp, -555, 900, migrate_to_chat_id=-100555)
    assert await current_chat(h.services.sessionmaker, -555) == -555
    if told_in == "old group":
        await group_update(h, dp, MOD_CHAT, 901, migrate_to_chat_id=SUPERGROUP)
    else:
        await group_update(h, dp, SUPERGROUP, 901, migrate_from_chat_id=MOD_CHAT)
    assert await current_chat(h.services.sessionmaker, MOD_CHAT) == SUPERGROUP
    # The card waiting for the old group goes to the new one; new cards go there too.
    after = await submit_idea(h, 7, "Après la migration")
    cards = await deliveries(h.services.sessionmaker, "moderation")
    assert [(c.chat_id, c.status) for c in cards] == [(SUPERGROUP, "pending")] * 2
    assert f"n° {before}" in (cards[0].text or "")
    assert f"n° {after}" in (cards[1].text or "")
    # A moderator's button in the supergroup is honoured (MODERATION_CHAT_ID names the old id).
    await mark_sent(h, cards[1].id, 5)
    client = h.client(user_id=1, dp=dp)
    card = Message(
        message_id=5,
        date=NOW,
        chat=Chat(id=SUPERGROUP, type="supergroup"),
        text=cards[1].text,
        reply_markup=json.loads(cards[1].reply_markup or "null"),
    )
    await client.click(card, button("Approuver"))
    assert (await idea_row(h, after)).status == "approved"


# --------------------------------------------------------------- ideas never carded


async def test_ideas_submitted_without_a_group_are_carded_once_one_is_set(
    tmp_path: Path, h: Harness
) -> None:
    await add_member(h.services.sessionmaker, 7, "Anne")
    without = make_app(tmp_path, h.services.sessionmaker, h.clock).app
    without.settings = without.settings.model_copy(update={"moderation_chat_id": None})
    no_group = Harness(without, h.services, h.storage, h.clock)
    first = await submit_idea(no_group, 7, "Sans groupe 1")
    second = await submit_idea(no_group, 7, "Sans groupe 2")
    async with h.services.sessionmaker() as session:
        assert await card_waiting_ideas(session, without, h.services.translator, NOW) == 0
    assert await deliveries(h.services.sessionmaker, "moderation") == []
    # Start-up with MODERATION_CHAT_ID set (app.run does this before polling).
    async with h.services.sessionmaker() as session:
        assert await card_waiting_ideas(session, h.app, h.services.translator, NOW) == 2
        await session.commit()
    async with h.services.sessionmaker() as session:
        assert await card_waiting_ideas(session, h.app, h.services.translator, NOW) == 0  # once
        await session.commit()
    cards = await deliveries(h.services.sessionmaker, "moderation", MOD_CHAT)
    assert [f"n° {first}" in (c.text or "") for c in cards] == [True, False]
    assert f"n° {second}" in (cards[1].text or "")


# --------------------------------------------------------------- /pending: send again


def last_sent(h: Harness) -> SendMessage:
    return next(c for c in reversed(h.bot.calls) if isinstance(c, SendMessage))


def as_message(call: SendMessage, chat_id: int) -> Message:
    return Message(
        message_id=77,
        date=NOW,
        chat=Chat(id=chat_id, type="private"),
        text=call.text,
        reply_markup=call.reply_markup,
    )


async def test_pending_offers_to_send_a_card_again(h: Harness) -> None:
    await add_member(h.services.sessionmaker, 7, "Anne")
    await add_member(h.services.sessionmaker, 8, "Bob")
    idea_id = await seed_idea(h, 7, "Carte perdue", status="pending")
    decided = await seed_idea(h, 7, "Déjà décidée", status="pending")
    dp = h.dispatcher()
    moderator = h.client(user_id=1, dp=dp)  # an organiser (ADMIN_IDS)
    await moderator.send("/pending")
    listing = last_sent(h)
    assert "Carte perdue" in listing.text and "🔁" in str(listing.reply_markup)
    # Decided meanwhile: its button says so and sends nothing.
    async with h.services.sessionmaker() as session:
        await h.use(session).ideas.decide(decided, True, 1, "Mia")
    await moderator.click(as_message(listing, 1), button(f"n° {decided}"))
    assert "Déjà décidé" in h.bot.alerts()[-1]

    await moderator.click(as_message(listing, 1), button(f"n° {idea_id}"))
    await moderator.click(as_message(listing, 1), button(f"n° {idea_id}"))  # double tap
    assert "renvoyée au groupe de modération" in h.bot.alerts()[-1]
    again = [
        d
        for d in await deliveries(h.services.sessionmaker, "moderation", MOD_CHAT)
        if ":again:" in d.dedupe_key
    ]
    assert len(again) == 1 and f"n° {idea_id}" in (again[0].text or "")
    assert "Approuver" in (again[0].reply_markup or "")

    # Someone else pressing the button: refused, nothing queued.
    other = h.client(user_id=8, dp=dp)
    other.last_update_id = 800_000
    h.clock.now = NOW.replace(minute=30)
    await other.click(as_message(listing, 8), button(f"n° {idea_id}"))
    assert "réservée aux modérateurs" in h.bot.alerts()[-1]
    assert len(await deliveries(h.services.sessionmaker, "moderation", MOD_CHAT)) == 1
