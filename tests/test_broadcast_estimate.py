"""What a broadcast will take before it is sent (/announce), and how far it has got (/status):
messages as Telegram counts them, the time at the configured rate, the cost of paid broadcasts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.consultation import load_consultation
from bot.context import AppContext
from bot.delivery.estimate import estimate, seconds_left
from bot.delivery.ratelimit import SendLimits, send_limits
from bot.i18n import Translator
from bot.organisers.status import status_report
from storage.models import Delivery
from storage.repositories.outbox import NewDelivery, OutboxRepository
from tests.support import DEFAULT_CONSULTATION
from tests.test_dialogs import Harness, harness  # noqa: F401  (the dialog harness fixture)


def test_time_at_the_rate_and_cost_of_paid_broadcasts() -> None:
    free = estimate(10_000, SendLimits(per_second=25))
    assert free.stars is None
    assert round(free.seconds) == round(10_000 / (25 / 1.03))  # 412 s: the margin counts
    paid = estimate(10_000, send_limits(Settings(bot_token=None, paid_broadcast=True)))
    assert paid.rate == 900
    # 11.4 s at 873.8/s: the free 30 of each second (343) are not billed, the rest at 0.1 ⭐.
    assert paid.stars == round((10_000 - 30 * 10_000 / (900 / 1.03)) * 0.1, 1) == 965.7
    assert paid.stars_at_most == 1000.0
    small = estimate(20, SendLimits(per_second=900, paid=True))
    assert small.stars == 0.0  # within the first second's free 30
    # Work already queued goes first; one chat's nine messages take 8 s whatever the rate.
    assert estimate(100, SendLimits(per_second=10, margin=0.0), ahead=50).seconds == 15.0
    assert estimate(9, SendLimits(per_second=1000, margin=0.0), per_chat=9).seconds == 8.0
    assert seconds_left(0, 1, SendLimits(), retry_in=30.0) == 30.0


async def test_status_shows_each_broadcasts_progress_and_time_left(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime.now(UTC)
    async with sessionmaker() as session:
        outbox = OutboxRepository(session)
        photos = [await outbox.add_media(f"{i}.png", b"png") for i in range(7)]
        album = await outbox.add_album(photos)
        items = [NewDelivery(f"old{i}", "announce:old", 100 + i, text="x") for i in range(3)]
        for chat in range(200, 230):  # an album then a text each: 8 messages per chat
            items += [
                NewDelivery(f"a{chat}", "results:results", chat, "charts", album),
                NewDelivery(f"s{chat}", "results:results", chat, text="summary"),
            ]
        await outbox.enqueue(items, now)
        await session.commit()
        assert await outbox.open_weight() == 3 + 30 * 8
        await session.execute(
            update(Delivery).where(Delivery.topic == "announce:old").values(status="sent")
        )
        await session.execute(
            update(Delivery)
            .where(Delivery.dedupe_key.in_(["a200", "s200", "a201", "s201"]))
            .values(status="sent")
        )
        await session.execute(
            update(Delivery)
            .where(Delivery.dedupe_key.in_(["a202", "s202"]))
            .values(status="blocked")
        )
        await session.execute(
            update(Delivery).where(Delivery.dedupe_key == "a203").values(status="failed")
        )
        await session.commit()
        weights = dict((await session.execute(select(Delivery.dedupe_key, Delivery.weight))).all())
        assert (weights["a205"], weights["s205"], weights["old0"]) == (7, 1, 1)
        open_messages = await session.scalar(
            select(func.sum(Delivery.weight)).where(Delivery.status == "pending")
        )
    assert open_messages == 26 * 8 + 1  # s203 waits too

    consultation = load_consultation(DEFAULT_CONSULTATION)
    settings = Settings(bot_token=None, broadcast_rate=1)
    app = AppContext(settings=settings, consultation=consultation, clock=lambda: now)
    async with sessionmaker() as session:
        report = await status_report(session, app, Translator(), "fr")
    assert "Diffusions en cours ou récentes :" in report
    assert "• announce:old : 3 envoyés, 0 en attente, 0 en échec, 0 bloqués — terminée" in report
    # 209 messages at 1/s (less the 3 % margin): 215 s, about 4 minutes.
    line = "• results:results : 4 envoyés, 53 en attente, 1 en échec, 2 bloqués — reste environ"
    assert f"{line} 4 minutes" in report, report
    translator = Translator()
    async with sessionmaker() as session:
        with translator.use("en"):
            report = await status_report(session, app, translator, "en")
    assert "• results:results : 4 sent, 53 pending, 1 failed, 2 blocked — about 4 minutes left" in (
        report
    ), report
    # A day later the finished announcement is no longer listed; the open one still is.
    later = AppContext(
        settings=settings, consultation=consultation, clock=lambda: now + timedelta(days=2)
    )
    async with sessionmaker() as session:
        report = await status_report(session, later, Translator(), "fr")
    assert "announce:old" not in report and "results:results" in report


async def test_announce_confirmation_says_messages_time_and_cost_before_sending(
    harness: Harness,  # noqa: F811
) -> None:
    h = harness
    member = h.client(user_id=7)
    await member.send("/start")
    admin = h.client(user_id=1, dp=member.dp)
    h.app.settings = h.app.settings.model_copy(update={"paid_broadcast": True})
    await admin.send("/announce")
    await h.click(admin, "Ambassadeurs")
    await admin.send("Réunion jeudi")
    confirm = h.last().text or ""
    assert "2 messages à envoyer, au sens de Telegram" in confirm, confirm
    assert "Durée estimée : moins d’une minute, au rythme de 900 messages par seconde." in confirm
    assert "coût estimé 0 ⭐ (au plus 0.2 ⭐)" in confirm
    async with h.services.sessionmaker() as session:  # nothing is queued before "Envoyer"
        assert await session.scalar(select(func.count()).select_from(Delivery)) == 0
    h.app.settings = h.app.settings.model_copy(update={"paid_broadcast": False})
    await admin.send("/announce")
    await h.click(admin, "Ambassadeurs")
    await admin.send("Réunion vendredi")
    confirm = h.last().text or ""
    assert "au rythme de 25 messages par seconde" in confirm and "⭐" not in confirm
