"""The results are computed once per change of the data, never per /results, and off the loop."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.consultation import Consultation, PhaseKind, load_consultation
from bot.results.communes import ByCommune
from bot.results.service import ResultsCache
from storage.db import make_engine, make_sessionmaker
from storage.hot_path.statements import Direct
from storage.models import Member
from storage.repositories.members import MemberRepository
from storage.repositories.tallies import data_version, tally
from tests.support import DEFAULT_CONSULTATION, answer_survey, seed_answers

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # long after the survey: the data has settled


@pytest.fixture
def consultation() -> Consultation:
    return load_consultation(DEFAULT_CONSULTATION)


def survey_time(consultation: Consultation, minutes: int) -> datetime:
    survey = consultation.phase(PhaseKind.SURVEY)
    assert survey is not None
    return survey.starts + timedelta(days=1, minutes=minutes)


async def respond(
    sessionmaker: async_sessionmaker[AsyncSession],
    consultation: Consultation,
    member_id: int,
    minutes: int,
    plan: int = 0,
) -> None:
    """Member `member_id` submits the seed's `plan`-th answers, `minutes` into the survey."""
    async with sessionmaker() as session:
        await MemberRepository(session).get_or_create(member_id, f"m{member_id}")
        await session.commit()
        answers = seed_answers()[plan]
        await answer_survey(
            session, consultation, member_id, answers, survey_time(consultation, minutes)
        )


def asker(
    sessionmaker: async_sessionmaker[AsyncSession], cache: ResultsCache, consultation: Consultation
) -> Callable[[], Awaitable[int]]:
    """A /results in its own session, as a member's update would: the respondents it shows."""

    async def respondents() -> int:
        async with sessionmaker() as session:
            return (await cache.results(session, consultation, NOW)).respondents

    return respondents


def large_from(monkeypatch: pytest.MonkeyPatch, submitted: int) -> None:
    """Consultations count as LARGE from `submitted` responses; no floor (MIN_HOLD) to their
    results' lag but RECOMPUTE_GAP times their computation, which a still clock makes 0."""
    from bot.results import service

    monkeypatch.setattr(service, "LARGE", submitted)
    monkeypatch.setattr(service, "MIN_HOLD", 0.0)


async def test_results_are_computed_once_per_change_of_the_data(
    sessionmaker: async_sessionmaker[AsyncSession], consultation: Consultation
) -> None:
    cache = ResultsCache()
    await respond(sessionmaker, consultation, 1, minutes=1)
    await respond(sessionmaker, consultation, 2, minutes=2, plan=1)

    async with sessionmaker() as session:
        first = await cache.results(session, consultation, NOW)
        for _ in range(5):
            assert await cache.results(session, consultation, NOW) is first
    assert first.respondents == 2
    assert cache.computations == 1

    # A draft changes nothing that is counted: no new computation.
    async with sessionmaker() as session:
        await MemberRepository(session).get_or_create(3, "draft")
        await session.commit()
        plan = {"challenges": ["nuisances"]}
        await answer_survey(
            session, consultation, 3, plan, survey_time(consultation, 3), submit=False
        )
        assert await cache.results(session, consultation, NOW) is first
    assert cache.computations == 1

    # A new submission: computed again, once.
    await respond(sessionmaker, consultation, 4, minutes=4, plan=2)
    async with sessionmaker() as session:
        second = await cache.results(session, consultation, NOW)
        assert await cache.results(session, consultation, NOW) is second
    assert second.respondents == 3
    assert cache.computations == 2

    # A submitted member changes an answer: the counts change, so do the results.
    async with sessionmaker() as session:
        await answer_survey(
            session,
            consultation,
            1,
            {"rehab_priority": ["no"]},
            survey_time(consultation, 5),
            submit=False,
        )
        third = await cache.results(session, consultation, NOW)
    assert cache.computations == 3
    assert third.fingerprint() != second.fingerprint()


async def test_a_storm_of_requests_shares_one_computation(
    sessionmaker: async_sessionmaker[AsyncSession], consultation: Consultation
) -> None:
    cache = ResultsCache()
    await respond(sessionmaker, consultation, 1, minutes=1)

    async def ask() -> int:
        async with sessionmaker() as session:
            return (await cache.results(session, consultation, NOW)).respondents

    assert await asyncio.gather(*(ask() for _ in range(20))) == [1] * 20
    assert cache.computations == 1


async def test_results_computed_right_after_a_change_are_computed_once_more_later(
    sessionmaker: async_sessionmaker[AsyncSession], consultation: Consultation
) -> None:
    """A change dated before the latest one may commit after the results were computed
    (answers are dated when the tap began): results that soon after the latest change are
    computed once more after `settle`, then kept."""
    cache = ResultsCache(settle=timedelta(minutes=1))
    await respond(sessionmaker, consultation, 1, minutes=1)
    last = survey_time(consultation, 1)
    async with sessionmaker() as session:
        await cache.results(session, consultation, last + timedelta(seconds=5))
        await cache.results(session, consultation, last + timedelta(seconds=30))
        assert cache.computations == 1
        await cache.results(session, consultation, last + timedelta(minutes=2))
        await cache.results(session, consultation, last + timedelta(minutes=3))
    assert cache.computations == 2


async def test_the_data_version_moves_with_submissions_and_erasures(
    sessionmaker: async_sessionmaker[AsyncSession], consultation: Consultation
) -> None:
    async with sessionmaker() as session:
        empty = await data_version(session, consultation.id)
    assert (empty.submitted, empty.last_change) == (0, None)
    await respond(sessionmaker, consultation, 1, minutes=1)
    await respond(sessionmaker, consultation, 2, minutes=2, plan=1)
    async with sessionmaker() as session:
        two = await data_version(session, consultation.id)
        assert two.submitted == 2
        assert two.last_change is not None and two.last_change.tzinfo is not None
        member = await session.get(Member, 2)
        assert member is not None
        await session.delete(member)  # /forget: the response goes with the member
        await session.commit()
        assert (await data_version(session, consultation.id)).submitted == 1


async def test_sqlite_tallies_off_the_event_loop(
    sqlite_url: str, consultation: Consultation
) -> None:
    """On a SQLite file the tally's statements run on a worker thread (the inline driver
    would run them on the loop's thread, stopping every member's taps meanwhile), at a lower
    CPU priority than the loop's."""
    engine: AsyncEngine = make_engine(sqlite_url)
    try:
        sessionmaker = make_sessionmaker(engine)
        await respond(sessionmaker, consultation, 1, minutes=1)
        threads: set[tuple[int, int]] = set()

        def where(sql: str) -> None:
            if "tally_counts" in sql:
                nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
                threads.add((threading.get_ident(), nice))

        Direct.of(engine).trace(where)
        async with sessionmaker() as session:
            counts = await tally(session, consultation.id)
        assert counts.respondents == 1
        loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert threads
        assert all(ident != threading.get_ident() and nice > loop_nice for ident, nice in threads)
    finally:
        await engine.dispose()


async def test_a_large_consultation_is_counted_and_computed_with_a_lag(
    sessionmaker: async_sessionmaker[AsyncSession],
    consultation: Consultation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From LARGE submitted responses, a storm of requests reads the data version once a
    second (SHARE_VERSION), and the results are computed again in the background, at most
    once per RECOMPUTE_GAP times their computation, the previous ones served meanwhile; a
    small consultation stays exact (above)."""
    from bot.results import service

    large_from(monkeypatch, 2)  # MIN_HOLD's floor: at the end
    reads = 0
    read = service.data_version

    async def counted(session: AsyncSession, cid: str) -> object:
        nonlocal reads
        reads += 1
        return await read(session, cid)

    monkeypatch.setattr(service, "data_version", counted)
    now = [100.0]
    cache = ResultsCache(clock=lambda: now[0])
    respondents = asker(sessionmaker, cache, consultation)
    await respond(sessionmaker, consultation, 1, minutes=1)
    assert await respondents() == 1  # under LARGE: exact, read each time
    assert await respondents() == 1
    assert reads == 3  # two requests, one computation
    await respond(sessionmaker, consultation, 2, minutes=2, plan=1)
    # LARGE now: the previous results at once, the new ones computed in the background.
    assert await respondents() == 1
    await cache.refreshed()
    assert await respondents() == 2
    assert (reads, cache.computations) == (5, 2)

    # A storm reads nothing more while the version serves.
    for _ in range(20):
        assert await respondents() == 2
    assert reads == 5
    # A new submission waits for the version to be read again…
    await respond(sessionmaker, consultation, 3, minutes=3, plan=2)
    assert await respondents() == 2
    now[0] += service.SHARE_VERSION
    assert await respondents() == 2  # …which starts a computation…
    await cache.refreshed()
    assert await respondents() == 3  # …then counts
    assert cache.computations == 3
    # A computation that takes 2 s is not made again for 6 s after it.
    compute = service.compute_by_commune

    async def slow(session: AsyncSession, c: Consultation) -> object:
        now[0] += 2.0
        return await compute(session, c)

    monkeypatch.setattr(service, "compute_by_commune", slow)
    await respond(sessionmaker, consultation, 4, minutes=4, plan=3)
    now[0] += service.SHARE_VERSION
    assert await respondents() == 3
    await cache.refreshed()
    assert await respondents() == 4
    ended = now[0]
    await respond(sessionmaker, consultation, 5, minutes=5, plan=4)
    now[0] = ended + 3 * 2.0 - 0.001
    assert await respondents() == 4
    now[0] = ended + 3 * 2.0
    assert await respondents() == 4
    await cache.refreshed()
    assert await respondents() == 5
    assert cache.computations == 5
    # However quick, a computation is not made again for MIN_HOLD after it.
    monkeypatch.setattr(service, "compute_by_commune", compute)
    monkeypatch.setattr(service, "MIN_HOLD", 10.0)
    now[0] += 100.0
    await respond(sessionmaker, consultation, 6, minutes=6, plan=5)
    assert await respondents() == 5
    await cache.refreshed()
    assert await respondents() == 6
    ended = now[0]
    await respond(sessionmaker, consultation, 7, minutes=7, plan=6)
    now[0] = ended + 10.0 - 0.001
    assert await respondents() == 6
    await cache.refreshed()
    assert await respondents() == 6
    now[0] = ended + 10.0
    assert await respondents() == 6
    await cache.refreshed()
    assert await respondents() == 7
    assert cache.computations == 7


async def test_nobody_waits_for_a_large_consultations_new_results_and_charts(
    sessionmaker: async_sessionmaker[AsyncSession],
    consultation: Consultation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While new results are computed and their charts drawn (`prepare`, here held), every
    request takes the previous ones at once; they are served once prepared. A bot starting
    computes them ahead (`warm`), a small consultation's are left to the first request."""
    from bot.results import service

    large_from(monkeypatch, 2)
    drawn: list[int] = []
    release = asyncio.Event()

    async def prepare(c: Consultation, found: ByCommune) -> None:
        await release.wait()
        drawn.append(found.network.respondents)

    now = [100.0]  # still: a computation holds none back (RECOMPUTE_GAP)
    cache = ResultsCache(prepare=prepare, clock=lambda: now[0])
    engine = sessionmaker.kw["bind"]
    respondents = asker(sessionmaker, cache, consultation)
    await respond(sessionmaker, consultation, 1, minutes=1)
    cache.warm(engine, consultation, NOW)
    await cache.refreshed()
    assert cache.computations == 0  # under LARGE: nothing computed ahead
    await respond(sessionmaker, consultation, 2, minutes=2, plan=1)
    cache.warm(engine, consultation, NOW)
    await asyncio.sleep(0)
    assert cache._refreshing  # counting, then drawing: held
    release.set()
    await cache.refreshed()
    assert drawn == [2] and cache.computations == 1
    assert await respondents() == 2  # computed ahead: no request computes

    release.clear()
    await respond(sessionmaker, consultation, 3, minutes=3, plan=2)
    now[0] += service.SHARE_VERSION  # the version read again
    for _ in range(5):  # the charts of 3 are held: 2 served at once, each time
        assert await asyncio.wait_for(respondents(), 5) == 2
    assert drawn == [2]
    release.set()
    await cache.refreshed()
    assert drawn == [2, 3]
    assert await respondents() == 3
    assert cache.computations == 2


async def test_a_failed_refresh_keeps_the_previous_results_and_is_tried_again(
    sessionmaker: async_sessionmaker[AsyncSession],
    consultation: Consultation,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.results import service

    large_from(monkeypatch, 1)
    now = [100.0]
    cache = ResultsCache(clock=lambda: now[0])
    respondents = asker(sessionmaker, cache, consultation)
    await respond(sessionmaker, consultation, 1, minutes=1)
    assert await respondents() == 1
    await respond(sessionmaker, consultation, 2, minutes=2, plan=1)
    compute = service.compute_by_commune

    async def failing(session: AsyncSession, c: Consultation) -> object:
        raise ConnectionError("the database restarts")

    monkeypatch.setattr(service, "compute_by_commune", failing)
    now[0] += service.SHARE_VERSION
    assert await respondents() == 1
    await cache.refreshed()
    assert "in the background failed" in caplog.text
    monkeypatch.setattr(service, "compute_by_commune", compute)
    now[0] += service.SHARE_VERSION
    assert await respondents() == 1  # served while it is tried again
    await cache.refreshed()
    assert await respondents() == 2
