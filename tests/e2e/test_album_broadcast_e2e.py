"""A broadcast of albums under Telegram's limits, with a SIGKILL a third of the way through.

Each recipient gets what the results phase pushes when it sends the charts: a text, an album of
seven photos and a text — nine messages as Telegram counts them. The deliveries are queued
through the outbox directly (as the results phase queues them), so the test holds whatever the
results screens become. The emulator enforces 30 messages/s overall and a private chat's
pay-back, counting each photo of an album; the bot runs at BROADCAST_RATE=30.

The kill lands with requests on their way to Telegram and not answered: the emulator holds
every call, the bot's 'sent' records catch up with what Telegram delivered, then SIGKILL, and
the held calls are lost (Telegram never ran them). A message Telegram delivered in the few
milliseconds before the bot could record it would still go twice: the Bot API has no
idempotency key, and no sender can know it went.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from playground import BotAPIEmulator
from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.models import Delivery
from storage.repositories.outbox import NewDelivery, OutboxRepository
from tests.e2e.conftest import E2E
from tests.test_emulator import png

RECIPIENTS = 60
PHOTOS = 7
PER_RECIPIENT = 1 + PHOTOS + 1  # as Telegram counts them
FIRST = 5001


async def queue_album_broadcast(url: str, people: list[int]) -> None:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            outbox = OutboxRepository(session)
            photos = [await outbox.add_media(f"chart-{i}.png", png(60 + i)) for i in range(7)]
            album = await outbox.add_album(photos)
            items = []
            for chat in people:
                key = f"kill:results:{chat}"
                items += [
                    NewDelivery(f"{key}:intro", "results:results", chat, text=f"intro {chat}"),
                    NewDelivery(f"{key}:chart", "results:results", chat, "charts", album),
                    NewDelivery(f"{key}:0", "results:results", chat, text=f"summary {chat}"),
                ]
            await outbox.enqueue(items, datetime.now(UTC))
            await session.commit()
    finally:
        await engine.dispose()


async def recorded_sent(url: str) -> int:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            query = select(func.count()).where(Delivery.status == "sent")
            return int(await session.scalar(query.select_from(Delivery)) or 0)
    finally:
        await engine.dispose()


async def open_rows(url: str) -> Counter[str]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            )
            return Counter(dict(rows.all()))
    finally:
        await engine.dispose()


def delivered(emu: BotAPIEmulator) -> tuple[Counter[int], Counter[tuple[int, str]], int]:
    """Per chat: messages as Telegram counts them; per (chat, kind): deliveries; and the calls
    Telegram ran successfully."""
    messages: Counter[int] = Counter()
    kinds: Counter[tuple[int, str]] = Counter()
    calls = 0
    for call in emu.calls:
        if call.method not in ("sendMessage", "sendMediaGroup") or not call.response.get("ok"):
            continue
        chat = call.params["chat_id"]
        calls += 1
        if call.method == "sendMediaGroup":
            messages[chat] += len(call.params["media"])
            kinds[(chat, "album")] += 1
        else:
            messages[chat] += 1
            kinds[(chat, "intro" if call.params["text"].startswith("intro") else "summary")] += 1
    return messages, kinds, calls


async def test_sigkill_a_third_into_an_album_broadcast_no_duplicate_no_violation(
    e2e: E2E,
) -> None:
    emu = e2e.emulator
    now = datetime.now(UTC)
    path = e2e.consultation(  # nothing in the timeline is due: the broadcast is all there is
        {
            "survey": (now + timedelta(days=1), now + timedelta(days=10)),
            "results": (now + timedelta(days=11), now + timedelta(days=12)),
            "ideas": (now + timedelta(days=13), now + timedelta(days=300)),
        }
    )
    people = list(range(FIRST, FIRST + RECIPIENTS))
    for chat in people:
        emu.add_user(chat, f"R{chat}", "fr")
    await upgrade_async(e2e.database_url)
    await queue_album_broadcast(e2e.database_url, people)
    total = RECIPIENTS * PER_RECIPIENT
    emu.enforce_limits(global_per_second=30, per_chat_per_second=1, per_group_per_minute=20)
    fault = emu.inject_fault("sendMediaGroup", code=429, retry_after=1, times=1)

    bot = e2e.bot(path, BROADCAST_RATE="30")
    starting = asyncio.create_task(bot.start())
    await emu.wait_for(
        lambda: sum(delivered(emu)[0].values()) >= total // 3 or bot.exited(),
        timeout=120,
        what="a third of the broadcast",
    )
    assert not bot.exited(), bot.log_tail()
    # Telegram stops answering; the bot's records catch up with what it delivered.
    gate = emu.hold()
    await emu.wait_for(lambda: gate.held >= 1, timeout=30, what="a request in flight")
    calls_before = delivered(emu)[2]
    await emu.wait_for(
        lambda: _equals(recorded_sent(e2e.database_url), calls_before),
        timeout=30,
        what="the 'sent' records to catch up",
    )
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    await bot.kill()
    gate.drop()  # what was on its way never reaches the chats
    messages_before, _, _ = delivered(emu)
    assert total // 3 <= sum(messages_before.values()) < total
    statuses = await open_rows(e2e.database_url)
    assert statuses["sending"] >= 1, statuses  # claimed, in flight at the kill

    await bot.start()
    await emu.wait_for(
        lambda: all(delivered(emu)[0][chat] >= PER_RECIPIENT for chat in people),
        timeout=120,
        what="everyone's nine messages after the restart",
    )
    await emu.wait_for(
        lambda: _equals(recorded_sent(e2e.database_url), 3 * RECIPIENTS),
        timeout=30,
        what="every delivery recorded as sent",
    )
    messages, kinds, _ = delivered(emu)
    assert {chat: messages[chat] for chat in people} == dict.fromkeys(people, PER_RECIPIENT)
    duplicated = {key: n for key, n in kinds.items() if n != 1}
    assert duplicated == {}
    assert fault.hits == 1
    assert emu.limit_violations == [], emu.limit_violations
    assert "interrupted by a crash are queued again" in bot.log_path.read_text()


async def _equals(value: object, expected: int) -> bool:
    return await value == expected  # type: ignore[misc]
