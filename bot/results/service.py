"""The results, computed once per change of the data and never per /results.

A tally over 100,000 responses keeps the database busy for seconds (bench/results_load.py):
computed at every /results, a storm of them would keep it busy for good. `ResultsCache`
keeps the latest results with the data version they were computed from
(`storage.repositories.tallies.DataVersion`: the submitted responses' count and latest
change, read from the database so that every instance sees every instance's changes), and
computes again only when that version moved. One computation at a time: those who asked
meanwhile take its result.

A large consultation's results are refreshed in the background: /results takes the latest
results at once, and the next ones are computed (their charts drawn ahead, `prepare`) while
members go on tapping. Computed on demand, each refresh had every /results of a storm wait
for it, then all resume at once: the members' taps queued behind them (bench/results_load.py,
the slowest taps 1.5–2 s into the storm). A bot starting computes them ahead too (`warm`).

Every read here runs off the event loop (storage/hot_path/statements.py, `reading_aside`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.consultation import Consultation
from bot.results.communes import ByCommune, compute_by_commune
from bot.results.tally import Results, free_text_questions
from storage.repositories.tallies import (
    DataVersion,
    FreeText,
    data_version,
    free_text_counts,
    latest_free_texts,
)

log = logging.getLogger(__name__)

LATEST_FREE_TEXTS = 3
# An answer is dated when its tap began and committed a little later (the write gate waits up
# to 20 s): results computed less than this after the latest change are computed once more
# when it has passed, in case a change dated earlier than it committed after them.
SETTLE = timedelta(minutes=1)
# A large consultation makes counting costly: on PostgreSQL the data version's count is a
# scan of the submitted responses (10–19 ms at 100,000), the tally was 2–4 s before the
# database kept the counts (migration 0015: now a read of a few hundred rows). A storm of
# /results read the version 40 times a second, and each submission of a crowd had the tally
# computed again at once: a core of the database server kept busy, every member's tap
# slower (bench/results_load.py: +292 ms p99). From LARGE submitted responses, a version
# read serves for SHARE_VERSION, and results are computed again at most once per
# RECOMPUTE_GAP times what their computation took, and never within MIN_HOLD, in the
# background: they may lag the data by up to about 15 s. Each refresh also redraws the charts
# asked for (three albums: 3–8 s of a worker's core here); with the gap alone a crowd's
# submissions had one every 4–5 s.
LARGE = 10_000
SHARE_VERSION = 1.0  # seconds
RECOMPUTE_GAP = 3
MIN_HOLD = 15.0  # seconds


@dataclass(frozen=True)
class FreeTexts:
    """For organisers: per text question, how many answered and the latest few answers."""

    counts: dict[str, int]
    latest: dict[str, list[FreeText]]


@dataclass(frozen=True)
class _Entry:
    version: DataVersion
    started: int  # the ask counter when its version was read
    settles_at: datetime | None  # computed again once past, if still current
    found: ByCommune  # each commune's tally and the network's (their sum)
    free_texts: FreeTexts

    def serves(self, version: DataVersion, asked: int, now: datetime) -> bool:
        """Whether a request that read `version` as its `asked`-th may take these results:
        computed from that version (settled, or before it settles), or from reads begun
        after the request's own (they hold at least what it would have seen)."""
        if self.started > asked:
            return True
        return self.version == version and (self.settles_at is None or now < self.settles_at)


# Called with a large consultation's new results before /results takes them: the charts
# drawn ahead (bot/services.py), so that nobody waits for them either.
Prepare = Callable[[Consultation, ByCommune], Awaitable[None]]


@dataclass
class ResultsCache:
    """Per consultation, the results of the latest data version (built once, bot/services.py)."""

    settle: timedelta = SETTLE
    clock: Callable[[], float] = time.monotonic  # seconds, for the LARGE consultations' lag
    prepare: Prepare | None = None
    computations: int = 0
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _asked: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Per consultation, for LARGE ones: (time until which it serves, the version read).
    _versions: dict[str, tuple[float, DataVersion]] = field(default_factory=dict)
    # Per consultation, for LARGE ones: the time before which results are not computed again.
    _hold: dict[str, float] = field(default_factory=dict)
    # Per consultation, for LARGE ones: the background refresh under way.
    _refreshing: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def results(
        self, session: AsyncSession, consultation: Consultation, now: datetime
    ) -> Results:
        return (await self._current(session, consultation, now)).found.network

    async def by_commune(
        self, session: AsyncSession, consultation: Consultation, now: datetime
    ) -> ByCommune:
        return (await self._current(session, consultation, now)).found

    async def free_texts(
        self, session: AsyncSession, consultation: Consultation, now: datetime
    ) -> FreeTexts:
        return (await self._current(session, consultation, now)).free_texts

    def _ask(self) -> int:
        self._asked += 1
        return self._asked

    async def _current(
        self, session: AsyncSession, consultation: Consultation, now: datetime
    ) -> _Entry:
        cid = consultation.id
        asked = self._ask()
        entry = self._entries.get(cid)
        if entry is not None and self.clock() < self._hold.get(cid, 0.0):
            return entry
        version = await self._version(session, cid)
        if entry is not None and entry.serves(version, asked, now):
            return entry
        if entry is not None and version.submitted >= LARGE:
            self._refresh_later(_engine(session), consultation, now)
            return entry
        async with self._lock:
            entry = self._entries.get(cid)
            if entry is not None and entry.serves(version, asked, now):
                return entry  # computed while this one waited
            return await self._compute(session, consultation, now)

    async def _compute(
        self, session: AsyncSession, consultation: Consultation, now: datetime
    ) -> _Entry:
        """Count (holding `_lock`) and keep the results."""
        entry, began, ended = await self._count(session, consultation, now)
        self._keep(consultation.id, entry, began, ended)
        return entry

    async def _count(
        self, session: AsyncSession, consultation: Consultation, now: datetime
    ) -> tuple[_Entry, float, float]:
        """The results of the data now, with the clock's times before and after counting."""
        cid = consultation.id
        started = self._ask()
        began = self.clock()
        version = await data_version(session, cid)
        entry = _Entry(
            version,
            started,
            self._settles_at(version, now),
            await compute_by_commune(session, consultation),
            await _free_texts(session, consultation),
        )
        return entry, began, self.clock()

    def _keep(self, cid: str, entry: _Entry, began: float, ended: float) -> None:
        self._entries[cid] = entry
        self.computations += 1
        if entry.version.submitted >= LARGE:
            self._hold[cid] = ended + max(MIN_HOLD, RECOMPUTE_GAP * (ended - began))
        self._share(cid, entry.version)

    def warm(self, engine: AsyncEngine, consultation: Consultation, now: datetime) -> None:
        """A bot starting: a large consultation's results computed ahead, in the background
        (the first /results after a start waited 4–5 s at 100,000 responses)."""
        self._refresh_later(engine, consultation, now, only_large=True)

    def _refresh_later(
        self,
        engine: AsyncEngine,
        consultation: Consultation,
        now: datetime,
        only_large: bool = False,
    ) -> None:
        cid = consultation.id
        if cid in self._refreshing:
            return
        task = asyncio.create_task(
            self._refresh(engine, consultation, now, only_large), name=f"results-{cid}"
        )
        self._refreshing[cid] = task
        task.add_done_callback(lambda _t: self._refreshing.pop(cid, None))

    async def _refresh(
        self, engine: AsyncEngine, consultation: Consultation, now: datetime, only_large: bool
    ) -> None:
        """Count, then draw the charts ahead (`prepare`) and keep the new results. With none
        to serve yet (a bot starting), they are kept once counted: a /results meanwhile
        draws its own language's album rather than wait for every language's."""
        cid = consultation.id
        try:
            async with AsyncSession(engine) as session:
                if only_large and (await data_version(session, cid)).submitted < LARGE:
                    return
                async with self._lock:
                    entry, began, ended = await self._count(session, consultation, now)
                    first = cid not in self._entries
                    if first:
                        self._keep(cid, entry, began, ended)
            if self.prepare is not None:
                try:
                    await self.prepare(consultation, entry.found)
                except Exception:  # the results are right without their charts drawn ahead
                    log.exception("drawing the new results' charts ahead failed")
            if not first:
                self._keep(cid, entry, began, ended)
            log.info(
                "results of %s (%d submitted) counted in %.1f s, their charts drawn in %.1f s",
                cid,
                entry.version.submitted,
                ended - began,
                self.clock() - ended,
            )
        except Exception:  # the previous results stay; the next /results tries again
            log.exception("computing the results of %s in the background failed", cid)

    async def refreshed(self) -> None:
        """Wait for the background refreshes under way (tests, a bot stopping)."""
        while self._refreshing:
            await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    def cancel(self) -> None:
        """A bot stopping: the refreshes under way are given up."""
        for task in self._refreshing.values():
            task.cancel()

    async def _version(self, session: AsyncSession, cid: str) -> DataVersion:
        """The data version, read again unless a LARGE consultation's was read just now."""
        shared = self._versions.get(cid)
        if shared is not None and self.clock() < shared[0]:
            return shared[1]
        version = await data_version(session, cid)
        self._share(cid, version)
        return version

    def _share(self, cid: str, version: DataVersion) -> None:
        if version.submitted >= LARGE:
            self._versions[cid] = (self.clock() + SHARE_VERSION, version)
        else:
            self._versions.pop(cid, None)

    def _settles_at(self, version: DataVersion, now: datetime) -> datetime | None:
        last = version.last_change
        if last is None or now - last >= self.settle:
            return None
        return last + self.settle


def _engine(session: AsyncSession) -> AsyncEngine:
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    return engine


async def _free_texts(session: AsyncSession, consultation: Consultation) -> FreeTexts:
    questions = [q.id for q in free_text_questions(consultation)]
    if not questions:
        return FreeTexts({}, {})
    cid = consultation.id
    counts = await free_text_counts(session, cid)
    # A question nobody wrote in is not searched: with few texts among 100,000 responses,
    # finding the latest ones visits them all.
    latest = {
        q: await latest_free_texts(session, cid, q, LATEST_FREE_TEXTS) if counts.get(q) else []
        for q in questions
    }
    return FreeTexts(counts, latest)
