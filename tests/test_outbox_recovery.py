"""Outbox recovery and retries: claims owned by instances with heartbeats, retries bounded by
age (never by count) for transient errors, failed messages listed and re-queued, alerts."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramServerError,
)
from aiogram.methods import SendMessage
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.consultation import load_consultation
from bot.context import AppContext
from bot.delivery.instances import Instance
from bot.delivery.outbox import Outbox
from bot.delivery.ratelimit import SendLimits
from bot.i18n import Translator
from bot.organisers.alerts import AdminAlerts
from bot.organisers.status import status_report
from storage.models import Delivery
from storage.models import Instance as InstanceRow
from storage.repositories.outbox import NewDelivery, OutboxRepository, backoff
from tests.support import DEFAULT_CONSULTATION
from tests.test_outbox import ScriptedBot, enqueue, statuses

ADMIN = 900


class FakeClock:
    """Starts a little after the real now (the test's deliveries are queued at the real now)."""

    def __init__(self) -> None:
        self.now = self.start = datetime.now(UTC) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        """The rate limiter's clock: real time, plus the jumps of this clock (a retry minutes
        later is not held back by the per-chat interval)."""
        return time.monotonic() + (self.now - self.start).total_seconds()


def app_context(clock: FakeClock) -> AppContext:
    return AppContext(
        settings=Settings(bot_token=None, admin_ids=frozenset({ADMIN})),
        consultation=load_consultation(DEFAULT_CONSULTATION),
        clock=clock,
    )


async def drain(outbox: Outbox) -> None:
    """One claim-and-send round, and the results written. A chat the last round sent to (a
    failed try too) is left out of the claim until it has paid that back: wait for it (on a
    loaded machine the first wait may end a little early: wait again)."""
    for _ in range(5):  # a deadline, not a count: each round waits out a real debt
        if await outbox.pump() or not (busy := outbox.limiter.busy_chats(0.0)):
            break
        await asyncio.sleep(min(busy.values()))
    while outbox.tasks:
        await asyncio.gather(*outbox.tasks, return_exceptions=True)
    await outbox._flush_sent()


async def row(sessionmaker: async_sessionmaker[AsyncSession], key: str) -> Delivery:
    async with sessionmaker() as session:
        found = await OutboxRepository(session).delivery(key)
        assert found is not None
        return found


def server_error() -> TelegramServerError:
    return TelegramServerError(SendMessage(chat_id=0, text="x"), "Internal Server Error")


async def test_transient_errors_are_retried_by_age_not_by_count(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    method = SendMessage(chat_id=0, text="x")
    # Twelve errors in a row (the old sender gave up after 8): 5xx and network errors.
    failures = [
        server_error() if i % 2 else TelegramNetworkError(method, "down") for i in range(12)
    ]
    bot = ScriptedBot({1: list(failures)})
    await enqueue(sessionmaker, [NewDelivery("k1", "results:r", 1, text="hello")])
    outbox = Outbox(
        sessionmaker, bot, SendLimits(per_second=100), clock=clock, monotonic=clock.monotonic
    )
    await outbox.instance.register()
    waits = []
    for _ in range(13):
        await drain(outbox)
        current = await row(sessionmaker, "k1")
        if current.status == "sent":
            break
        assert current.status == "pending"
        waits.append(current.next_attempt_at - clock.now)
        clock.now = current.next_attempt_at
    assert (await row(sessionmaker, "k1")).status == "sent"
    assert bot.sent == [(1, "hello")]
    assert len(waits) == 12
    assert max(waits) == timedelta(minutes=5)  # the back-off is capped at 5 minutes
    assert waits[:3] == [timedelta(seconds=2), timedelta(seconds=4), timedelta(seconds=8)]
    assert backoff(30) == timedelta(minutes=5)


async def test_gives_up_after_max_age_lists_alerts_and_requeues(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    bot = ScriptedBot({2: [server_error() for _ in range(100)]})
    await enqueue(
        sessionmaker,
        [
            NewDelivery("down", "results:r", 2, text="never"),
            NewDelivery("bad", "announce:x", 3, text="<b>bad"),
        ],
    )
    bot.failures[3] = [
        TelegramBadRequest(SendMessage(chat_id=0, text="x"), "Bad Request: can't parse entities")
    ]
    outbox = Outbox(
        sessionmaker,
        bot,
        SendLimits(per_second=100),
        clock=clock,
        monotonic=clock.monotonic,
        max_age=timedelta(hours=1),
        alerts=AdminAlerts(app_context(clock), Translator()),
    )
    await outbox.instance.register()
    for _ in range(30):
        await drain(outbox)
        current = await row(sessionmaker, "down")
        if current.status == "failed":
            break
        clock.now = current.next_attempt_at
    current = await row(sessionmaker, "down")
    assert current.status == "failed"
    assert current.error is not None and current.error.startswith("gave up after 1 h")
    assert timedelta(hours=1) <= clock.now - clock.start < timedelta(hours=1, minutes=6)
    # The 400 failed at once: no retry would help.
    assert (await row(sessionmaker, "bad")).status == "failed"

    async with sessionmaker() as session:
        failed = await OutboxRepository(session).failed()
        alerts = (await session.scalars(select(Delivery).where(Delivery.topic == "alert"))).all()
    assert {r.dedupe_key for r in failed} == {"down", "bad"}
    # One alert per failing broadcast and hour, not one per error: about 20 errors over an
    # hour (two or three clock hours) gave at most three for "results", one for "announce".
    assert {a.chat_id for a in alerts} == {ADMIN}
    about_results = [a for a in alerts if "« results »" in (a.text or "")]
    about_announce = [a for a in alerts if "« announce »" in (a.text or "")]
    assert (await row(sessionmaker, "down")).attempts >= 15
    assert 1 <= len(about_results) <= 3 and len(about_announce) == 1
    assert len(alerts) == len(about_results) + len(about_announce)

    # /status names them, and says how to send them again.
    async with sessionmaker() as session:
        report = await status_report(session, app_context(clock), Translator(), "fr")
    assert "Envois en échec (les plus récents) :" in report
    assert f"• #{current.id} results:r → 2 : gave up after 1 h" in report
    assert "consultbot outbox retry ID" in report

    # Organisers re-queue one: it leaves with a fresh retry budget.
    async with sessionmaker() as session:
        assert await OutboxRepository(session).requeue_failed(clock.now, [current.id]) == 1
        await session.commit()
    again = await row(sessionmaker, "down")
    assert (again.status, again.attempts, again.failing_since) == ("pending", 0, None)
    bot.failures[2] = []
    # A round may be taken by other chats' rows (an alert crossing a clock hour is queued at
    # some times of day and not others) while chat 2 still pays back its last try: rounds
    # until it went, a few at most.
    for _ in range(5):
        await drain(outbox)
        if (await row(sessionmaker, "down")).status != "pending":
            break
    assert (await row(sessionmaker, "down")).status == "sent"
    async with sessionmaker() as session:
        assert await OutboxRepository(session).requeue_failed(clock.now) == 1  # --all: "bad"
        await session.commit()


async def test_claims_are_small_and_owned(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    outbox = Outbox(sessionmaker, ScriptedBot(), SendLimits(per_second=25))
    assert outbox.batch == 50  # two seconds of sending at the rate
    await enqueue(sessionmaker, [NewDelivery(f"s{i}", "t", 200 + i, text="x") for i in range(80)])
    await outbox.instance.register()
    async with sessionmaker() as session:
        rows = await OutboxRepository(session).claim_due(
            datetime.now(UTC), outbox.batch, outbox.instance.token
        )
        await session.commit()
    assert len(rows) == 50
    assert {r.claimed_by for r in rows} == {outbox.instance.token}


async def claimed_by(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, str | None]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Delivery.dedupe_key, Delivery.claimed_by).where(Delivery.status == "sending")
        )
        return dict(rows.all())


async def test_claims_requeued_only_when_their_instance_is_gone(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await enqueue(sessionmaker, [NewDelivery(f"c{i}", "t", 300 + i, text="x") for i in range(6)])
    a = Instance(sessionmaker, name="host-a:8081")
    b = Instance(sessionmaker, name="host-b:8081")
    await a.register()
    await b.register()
    now = datetime.now(UTC)
    async with sessionmaker() as session:
        await OutboxRepository(session).claim_due(now, 3, a.token)
        await OutboxRepository(session).claim_due(now, 3, b.token)
        await session.commit()
    assert sorted(set((await claimed_by(sessionmaker)).values())) == sorted([a.token, b.token])

    # Both alive: however old the claims, nobody takes the other's (no duplicates).
    assert await b.beat() == 0
    assert await a.beat(lambda: set()) == 0  # its claims are young: not "lost" either
    assert len(await claimed_by(sessionmaker)) == 6

    # A restarts (SIGKILL, then the same deployment slot): A's claims are queued again at once.
    a2 = Instance(sessionmaker, name="host-a:8081")
    assert await a2.register() == 3
    assert set((await claimed_by(sessionmaker)).values()) == {b.token}

    # B goes silent: once its heartbeat is older than the timeout, A2's next beat frees them.
    async with sessionmaker() as session:
        await session.execute(
            update(InstanceRow)
            .where(InstanceRow.token == b.token)
            .values(heartbeat_at=now - timedelta(seconds=11))
        )
        await session.commit()
    assert await a2.beat() == 3
    assert await claimed_by(sessionmaker) == {}
    async with sessionmaker() as session:
        tokens = set((await session.scalars(select(InstanceRow.token))).all())
    assert tokens == {a2.token}

    # A clean shutdown gives back what it claimed.
    async with sessionmaker() as session:
        await OutboxRepository(session).claim_due(datetime.now(UTC), 2, a2.token)
        await session.commit()
    await a2.retire()
    assert await claimed_by(sessionmaker) == {}


async def test_restarted_outbox_resumes_a_dead_predecessors_claims_at_once(
    sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await enqueue(sessionmaker, [NewDelivery(f"d{i}", "t", 400 + i, text="x") for i in range(5)])
    dead = Instance(sessionmaker, name="slot-1")
    await dead.register()
    async with sessionmaker() as session:
        await OutboxRepository(session).claim_due(datetime.now(UTC), 5, dead.token)
        await session.commit()
    bot = ScriptedBot()
    outbox = Outbox(
        sessionmaker, bot, SendLimits(per_second=100), instance=Instance(sessionmaker, "slot-1")
    )
    task = asyncio.create_task(outbox.run())
    started = asyncio.get_running_loop().time()
    try:
        while set((await statuses(sessionmaker)).values()) != {"sent"}:
            assert asyncio.get_running_loop().time() - started < 3, await statuses(sessionmaker)
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sorted(c for c, _ in bot.sent) == [400, 401, 402, 403, 404]


async def test_moderation_group_failing_alerts_the_admins_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    group = -100555
    method = SendMessage(chat_id=group, text="x")
    bot = ScriptedBot({group: [TelegramForbiddenError(method, "Forbidden: bot was kicked")]})
    await enqueue(
        sessionmaker,
        [
            NewDelivery(f"card{i}", "moderation", group, text=f"idea {i}", is_group=True)
            for i in range(3)
        ],
    )
    outbox = Outbox(
        sessionmaker,
        bot,
        SendLimits(per_second=100),
        clock=clock,
        monotonic=clock.monotonic,
        alerts=AdminAlerts(app_context(clock), Translator()),
    )
    await outbox.instance.register()
    await drain(outbox)
    # The group's cards are held (blocked), and the organisers hear of it once.
    assert set((await statuses(sessionmaker)).values()) >= {"blocked"}
    [alert] = [r for r in await all_rows(sessionmaker) if r.topic == "alert"]
    assert alert.chat_id == ADMIN and "groupe de modération" in (alert.text or "")
    assert "Forbidden: bot was kicked" in (alert.text or "")

    # Still failing a few minutes later (5xx this time): no second alert within the hour.
    clock.now += timedelta(minutes=5)
    bot.failures[group] = [server_error() for _ in range(5)]
    await enqueue(
        sessionmaker, [NewDelivery("card9", "moderation", group, text="9", is_group=True)]
    )
    for _ in range(4):
        await drain(outbox)
        clock.now += timedelta(minutes=1)
    assert (await row(sessionmaker, "card9")).attempts >= 3
    # (One more at most if these minutes happened to cross the top of an hour.)
    hours = len({int(t.timestamp() // 3600) for t in (clock.start, clock.now)})
    assert 1 <= len([r for r in await all_rows(sessionmaker) if r.topic == "alert"]) <= hours


async def all_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Delivery]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(Delivery).order_by(Delivery.id))).all())
