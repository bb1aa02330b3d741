"""Transitions that fail are recorded, retried with a back-off and reported without holding
back the later ones; results whose phase passed during downtime still go out, late; several
overdue reminders become one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import bot.phases.transitions
from bot.config import Settings
from bot.consultation import load_consultation
from bot.context import AppContext
from bot.i18n import Translator
from bot.organisers.status import status_report
from bot.phases.transitions import run_due
from bot.services import AppServices
from bot.ui.presenters import when
from storage.models import Delivery, PhaseTransition
from tests.support import default_document, with_dates, write_document
from tests.test_dialogs import Wired
from tests.test_transitions import add_members, count

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
ADMIN = 1  # member 1 (French) is also an organiser
TR = Translator()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def make_app(
    tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
    dates: dict[str, tuple[datetime, datetime]],
    clock: Clock,
    **survey: Any,
) -> Wired:
    document = with_dates(default_document(), dates)
    document["phases"][0].update(survey)
    path = write_document(tmp_path / "c.yaml", document)
    app = AppContext(
        settings=Settings(bot_token=None, admin_ids=frozenset({ADMIN})),
        consultation=load_consultation(path),
        clock=clock,
    )
    return Wired(app, AppServices.create(sessionmaker))


async def transition(
    sessionmaker: async_sessionmaker[AsyncSession], key: str
) -> PhaseTransition | None:
    async with sessionmaker() as session:
        return await session.get(PhaseTransition, f"deconfinement-2020:{key}")


async def alerts(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Delivery]:
    async with sessionmaker() as session:
        rows = await session.scalars(select(Delivery).where(Delivery.topic == "alert"))
        return list(rows.all())


async def test_a_failing_transition_is_retried_and_reported_without_blocking(
    tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await add_members(sessionmaker)
    clock = Clock()
    dates = {
        "survey": (NOW - 10 * H, NOW + 40 * H),  # open; its 48 h reminder is due too
        "results": (NOW + 41 * H, NOW + 50 * H),
        "ideas": (NOW + 51 * H, NOW + 100 * H),
    }
    w = make_app(tmp_path, sessionmaker, dates, clock)
    real_announce = bot.phases.transitions.announce_phase

    async def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("the announcement broke")

    monkeypatch.setattr(bot.phases.transitions, "announce_phase", broken)
    # The opening fails; the reminder after it still goes out.
    assert await run_due(w.app, w.services) == [
        "survey:open:failed",
        "survey:remind:172800:reminded 2",
    ]
    record = await transition(sessionmaker, "survey:open")
    assert record is not None
    assert (record.status, record.attempts) == ("failed", 1)
    assert record.error == "RuntimeError: the announcement broke"
    assert record.next_attempt_at == NOW + timedelta(seconds=30)
    assert await count(sessionmaker, "announce:") == 0

    # The organiser is told once, in French, and /status lists it.
    [alert] = await alerts(sessionmaker)
    assert alert.chat_id == ADMIN
    assert "survey:open" in (alert.text or "") and "RuntimeError" in (alert.text or "")
    async with sessionmaker() as session:
        report = await status_report(session, w.app, w.services.translator, "fr")
    assert TR.gettext("Transitions en échec :", "fr") in report
    assert "survey:open — 1 essai(s)" in report
    assert "• remind:172800" not in report and "survey:remind:172800 — reminded 2" in report

    # Not before its retry; then retried with a longer back-off; not alerted again.
    clock.now = NOW + timedelta(seconds=29)
    assert await run_due(w.app, w.services) == []
    clock.now = NOW + timedelta(seconds=31)
    assert await run_due(w.app, w.services) == ["survey:open:failed"]
    record = await transition(sessionmaker, "survey:open")
    assert record is not None and record.attempts == 2
    assert record.next_attempt_at == clock.now + timedelta(minutes=1)
    assert len(await alerts(sessionmaker)) == 1

    # Fixed: the next retry performs it, once.
    monkeypatch.setattr(bot.phases.transitions, "announce_phase", real_announce)
    clock.now += timedelta(minutes=1)
    assert await run_due(w.app, w.services) == ["survey:open:announced to 3"]
    record = await transition(sessionmaker, "survey:open")
    assert record is not None
    assert (record.status, record.outcome, record.error) == ("done", "announced to 3", None)
    assert await run_due(w.app, w.services) == []
    assert await count(sessionmaker, "announce:") == 3
    async with sessionmaker() as session:
        report = await status_report(session, w.app, w.services.translator, "fr")
    assert TR.gettext("Transitions en échec :", "fr") not in report


async def test_results_phase_passed_during_downtime_sent_late(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await add_members(sessionmaker)
    dates = {
        "survey": (NOW - 150 * H, NOW - 60 * H),
        "results": (NOW - 50 * H, NOW - 2 * H),  # entirely while the bot was down
        "ideas": (NOW + H, NOW + 100 * H),
    }
    w = make_app(tmp_path, sessionmaker, dates, Clock())
    done = await run_due(w.app, w.services)
    assert "results:open:results to 4 (late)" in done
    async with sessionmaker() as session:
        # One message each (the summary, its buttons): the note after the phase's text.
        summaries = list(
            (
                await session.scalars(select(Delivery).where(Delivery.topic == "results:results"))
            ).all()
        )
    assert len(summaries) == 4 and all(s.reply_markup for s in summaries)
    c = w.app.consultation
    phase = c.phases[1]
    languages = {1: "fr", 2: "nl", 3: "en", 4: "en"}
    for summary in summaries:
        lang = languages[summary.chat_id]
        late = TR.gettext(
            "⏳ Ces résultats arrivent en retard : le bot était indisponible pendant la phase "
            "des résultats ({start} – {end}).",
            lang,
        ).format(start=when(phase.starts, c, lang), end=when(phase.ends, c, lang))
        assert "\n\n" + late + "\n\n" in (summary.text or "")
        if lang != "fr":
            assert late != TR.gettext(
                "⏳ Ces résultats arrivent en retard : le bot était indisponible pendant la "
                "phase des résultats ({start} – {end}).",
                "fr",
            ).format(start=when(phase.starts, c, "fr"), end=when(phase.ends, c, "fr"))
    # The announcements of phases that are over stay skipped.
    assert "survey:open:skipped: phase over" in done


async def test_overdue_reminders_are_merged_into_one(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await add_members(sessionmaker)
    dates = {
        "survey": (NOW - 40 * H, NOW + 20 * H),  # both reminders (48 h, 24 h) fell due
        "results": (NOW + 21 * H, NOW + 30 * H),
        "ideas": (NOW + 31 * H, NOW + 100 * H),
    }
    w = make_app(tmp_path, sessionmaker, dates, Clock(), reminders=["48h", "24h"])
    done = await run_due(w.app, w.services)
    assert "survey:remind:172800:merged into a later reminder" in done
    assert "survey:remind:86400:reminded 2" in done
    assert await count(sessionmaker, "remind:") == 2  # one each for the two who did not submit
