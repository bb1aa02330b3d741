"""APScheduler wiring: jobs derived from the consultation file at every start (never persisted)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.context import AppContext, FileClock
from bot.phases.transitions import run_due
from bot.services import AppServices, UpdateServices

log = logging.getLogger(__name__)
SAFETY_NET = timedelta(seconds=30)
NOTIFICATION_TICK = timedelta(seconds=30)


class PhaseEngine:
    """Runs due transitions at start-up (catch-up), at their instant, and every 30 s anyway."""

    def __init__(self, app: AppContext, services: AppServices) -> None:
        self.app = app
        self.services = services
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.lock = asyncio.Lock()
        self._moved: asyncio.Future[list[str]] | None = None

    async def catch_up(self) -> list[str]:
        async with self.lock:
            try:
                done = await run_due(self.app, self.services)
            except Exception:  # a failed run is retried by the next tick
                log.exception("phase engine: running due transitions failed")
                return []
        if done:
            self.services.doorbell.ring()
        return done

    async def flush_notifications(self) -> None:
        try:
            async with self.services.sessionmaker() as session:
                await UpdateServices(session, self.app, self.services).ideas.flush_notifications()
        except Exception:
            log.exception("flushing grouped notifications failed")

    async def card_comments(self) -> None:
        try:
            async with self.services.sessionmaker() as session:
                await UpdateServices(session, self.app, self.services).ideas.card_comments()
        except Exception:
            log.exception("queueing batched comment cards failed")

    def plan(self) -> None:
        """One job per future event, with a stable id: a restart or a new date re-plans it."""
        now = self.app.clock()
        # APScheduler fires on the wall clock; the bot's clock may be moved (FileClock).
        shift = now - datetime.now(UTC)
        for event in self.app.timeline.events():
            if event.at > now:
                self.scheduler.add_job(
                    self.catch_up,
                    DateTrigger(run_date=event.at - shift),
                    id=f"transition:{event.key}",
                    replace_existing=True,
                    misfire_grace_time=None,
                    coalesce=True,
                )
        self._every(self.flush_notifications, NOTIFICATION_TICK, "notifications:flush")
        self._every(
            self.card_comments,
            timedelta(seconds=min(30.0, self.app.settings.comment_cards_every)),
            "comments:cards",
        )
        self._every(self.catch_up, SAFETY_NET, "transition:safety-net")

    def _every(self, job: Callable[[], Awaitable[object]], period: timedelta, name: str) -> None:
        """A recurring job: never two runs at once, missed runs merged into one."""
        self.scheduler.add_job(
            job,
            IntervalTrigger(seconds=period.total_seconds()),
            id=name,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )

    async def start(self) -> None:
        await self.catch_up()
        self.plan()
        self.scheduler.start()
        if isinstance(self.app.clock, FileClock):
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self._clock_moved)

    def _clock_moved(self) -> None:
        """The clock file changed: what fell due runs now, the rest is planned again."""
        assert isinstance(self.app.clock, FileClock)
        self.app.clock.reload()
        log.info("clock moved: now %s", self.app.clock().isoformat(timespec="seconds"))
        for job in self.scheduler.get_jobs():
            if job.id.startswith("transition:") and job.id != "transition:safety-net":
                job.remove()
        self.plan()
        self._moved = asyncio.ensure_future(self.catch_up())

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def jobs(self) -> list[str]:
        return [job.id for job in self.scheduler.get_jobs()]
