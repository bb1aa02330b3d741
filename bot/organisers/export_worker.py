"""Exports off the event loop: written by a worker process, streamed as they are read.

An xlsx export of 100,000 responses is a minute of Python (each row's cells) and its reads:
on the event loop it froze every member's taps for that long. In a thread the taps still
waited, for the GIL this time (measured with a 5 ms loop probe during a 20,000-response xlsx
export: p99 lag 23 ms, max 187 ms in a thread; 3.6 ms and 13 ms in a process). So the export
runs in a process of its own, with its own event loop and database engine, one export at a
time; it still reads the responses in batches and writes each row as it comes (XlsxWriter's
constant_memory mode, csv.writer), never holding the whole export in memory. The process is
started on the first export (spawned, not forked: the bot's threads and connections stay
behind) and kept for the next ones. It runs niced; pacing it to half a core was tried and did
not lower the members' p99 (bench/README.md, results_load.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from bot.consultation import Consultation
from bot.organisers.export import CLI_ACTOR, Actor, ExportFormat, ExportKind, export
from bot.worker_pool import stop_pool, worker_pool

log = logging.getLogger(__name__)


def export_files(
    database_url: str,
    consultation: Consultation,
    kinds: Sequence[ExportKind],
    fmt: ExportFormat,
    out_dir: Path,
    lang: str | None = None,
    actor: Actor = CLI_ACTOR,
    now: datetime | None = None,
) -> list[Path]:
    """In the worker: `export` on an event loop and a database engine of its own."""
    from storage.db import make_engine, make_sessionmaker

    async def run() -> list[Path]:
        # One session: one connection; its reads serial on PostgreSQL (make_engine).
        engine = make_engine(database_url, pool_size=1, background=True)
        try:
            async with make_sessionmaker(engine)() as session:
                return await export(
                    session, consultation, kinds, fmt, out_dir, lang, actor=actor, now=now
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


class ExportRunner:
    """Runs exports on an executor of its own: a worker process (built once, bot/services.py),
    or what `make_executor` makes (a test's thread).

    An organiser's /export is delivered by a task of its own (`start`), not within the update:
    an update holds the member's turn, so the organiser's next commands waited for the whole
    export (a /results 19 s in the load benchmark), and an impatient second /export queued a
    second export. One export per organiser at a time."""

    def __init__(self, make_executor: Callable[[], Executor] | None = None) -> None:
        self._make_executor = make_executor or worker_pool
        self._executor: Executor | None = None
        self._deliveries: dict[int, asyncio.Task[None]] = {}

    def busy(self, owner: int) -> bool:
        """An export of this organiser's is still being written or sent."""
        return owner in self._deliveries

    def start(self, owner: int, delivery: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `delivery` (an export and the sending of its files) beside the updates."""
        if self.busy(owner):
            delivery.close()
            raise RuntimeError(f"an export of {owner} is already running")
        task = asyncio.create_task(delivery, name=f"export-{owner}")
        self._deliveries[owner] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._deliveries.get(owner) is finished:
                del self._deliveries[owner]
            if not finished.cancelled() and (error := finished.exception()) is not None:
                log.error("the export for %s ended on an error", owner, exc_info=error)

        task.add_done_callback(done)
        return task

    async def export(
        self,
        database_url: str,
        consultation: Consultation,
        kinds: Sequence[ExportKind],
        fmt: ExportFormat,
        out_dir: Path,
        lang: str | None = None,
        actor: Actor = CLI_ACTOR,
        now: datetime | None = None,
    ) -> list[Path]:
        """The files, written by the worker; recorded in the audit log as `actor`'s."""
        job = partial(
            export_files, database_url, consultation, kinds, fmt, out_dir, lang, actor, now
        )
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker(), job)
        except BrokenProcessPool:
            self._executor = None  # the worker died (killed, out of memory): a new one next time
            raise

    def _worker(self) -> Executor:
        if self._executor is None:
            self._executor = self._make_executor()
        return self._executor

    async def finished(self) -> None:
        """Once every delivery under way is over (whatever its outcome)."""
        await asyncio.gather(*self._deliveries.values(), return_exceptions=True)

    async def stop(self, within: float) -> None:
        """Cancel the deliveries under way and give them `within` seconds to leave word for
        their organisers (export_handlers: a notice the outbox sends after the restart);
        then stop the worker."""
        under_way = list(self._deliveries.values())
        for task in under_way:
            task.cancel()
        if under_way:
            await asyncio.wait(under_way, timeout=within)
        self.close()

    def close(self) -> None:
        """Stop the worker, an export it is writing too; a delivery still under way is
        cancelled without a word (`stop` lets it leave one)."""
        for task in self._deliveries.values():
            task.cancel()
        if self._executor is not None:
            stop_pool(self._executor)
            self._executor = None
