"""/export's files are written by a worker process: the same files as `export` writes."""

from __future__ import annotations

import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import load_consultation
from bot.organisers.export import ALL_KINDS, ExportFormat, export
from bot.organisers.export_worker import ExportRunner
from tests.support import DEFAULT_CONSULTATION
from tests.test_export import seed


def sheets(path: Path) -> dict[str, list[tuple[object, ...]]]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return {ws.title: list(ws.iter_rows(values_only=True)) for ws in workbook.worksheets}
    finally:
        workbook.close()


async def test_the_worker_process_writes_what_export_writes(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    consultation = load_consultation(DEFAULT_CONSULTATION)
    await seed(sessionmaker, consultation)
    runner = ExportRunner()
    try:
        for fmt in (ExportFormat.CSV, ExportFormat.XLSX):
            here, there = tmp_path / f"here-{fmt}", tmp_path / f"there-{fmt}"
            async with sessionmaker() as session:
                expected = await export(session, consultation, ALL_KINDS, fmt, here, "nl")
            written = await runner.export(database_url, consultation, ALL_KINDS, fmt, there, "nl")
            assert [p.name for p in written] == [p.name for p in expected]
            for mine, theirs in zip(expected, written, strict=True):
                if fmt == ExportFormat.CSV:
                    assert theirs.read_bytes() == mine.read_bytes()
                else:  # a workbook's bytes hold the time it was written: compare its cells
                    assert sheets(theirs) == sheets(mine)
        # One process, started by the first export and kept for the next: not this one.
        worker = runner._executor
        assert worker is not None
        pids = {p.pid for p in worker._processes.values()}  # type: ignore[attr-defined]
        assert len(pids) == 1 and os.getpid() not in pids
    finally:
        runner.close()


class _Chat:
    """What the delivery uses of the organiser's /export message."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.documents: list[str] = []

    async def answer(self, text: str, **_: object) -> None:
        self.texts.append(text)

    async def answer_document(self, document: object, **_: object) -> None:
        self.documents.append(str(document))


def a_delivery(
    chat: _Chat,
    runner: ExportRunner,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    lang: str,
    owner: int,
) -> Coroutine[Any, Any, None]:
    """An organiser's /export delivery (export_handlers), of the results as csv."""
    from bot.config import Settings
    from bot.context import AppContext
    from bot.i18n import Translator
    from bot.organisers.export import Actor, ExportKind
    from bot.organisers.export_handlers import _deliver

    app = AppContext(
        settings=Settings(bot_token=None, database_url=database_url),
        consultation=load_consultation(DEFAULT_CONSULTATION),
    )
    return _deliver(
        chat,  # type: ignore[arg-type]
        app,
        Translator(),
        runner,
        (ExportKind.RESULTS,),
        ExportFormat.CSV,
        lang,
        Actor(owner, "Olga"),
        sessionmaker,
    )


async def test_a_failed_export_is_told_in_the_organisers_language_and_frees_the_next(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A delivery runs beside the updates, one per organiser; a failure is said, not lost."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from bot.i18n import Translator

    broken = tmp_path / "missing" / "db.sqlite"  # no such folder: the worker's export fails
    runner = ExportRunner(lambda: ThreadPoolExecutor(1))
    chat = _Chat()
    try:
        delivery = a_delivery(chat, runner, sessionmaker, f"sqlite+aiosqlite:///{broken}", "nl", 1)
        task = runner.start(1, delivery)
        assert runner.busy(1)
        with pytest.raises(RuntimeError):
            runner.start(1, asyncio.sleep(0))  # a second one for the same organiser
        assert not runner.busy(2)
        await asyncio.wait_for(task, 30)
        assert not runner.busy(1)
    finally:
        runner.close()
    assert chat.documents == []
    assert chat.texts == [
        Translator().gettext(
            "L’export a échoué. Réessayez dans un moment ; si cela se reproduit, "
            "les journaux du bot disent pourquoi.",
            locale="nl",
        )
    ]
    assert chat.texts[0].startswith("De export is mislukt")


async def test_a_delivery_that_cannot_reach_telegram_ends_and_frees_the_next(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    class Unreachable(_Chat):
        async def answer(self, text: str, **_: object) -> None:
            raise OSError("the Bot API is down")

    runner = ExportRunner()

    async def delivery() -> None:
        await Unreachable().answer("Export terminé")

    try:
        task = runner.start(3, delivery())
        await asyncio.wait_for(asyncio.wait([task]), 10)
        assert not runner.busy(3)
    finally:
        runner.close()
    assert "the export for 3 ended on an error" in caplog.text


async def test_an_export_cut_short_while_written_leaves_word_in_the_outbox(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A stop while the worker still writes the files: the organiser's notice waits in the
    outbox, in their language, for the next instance; nothing was said in the chat."""
    import asyncio

    from sqlalchemy import select

    from bot.organisers.alerts import ALERT_TOPIC
    from storage.models import Delivery

    writing = asyncio.Event()

    class Endless(ExportRunner):
        async def export(self, *args: object, **kwargs: object) -> list[Path]:
            writing.set()
            await asyncio.Event().wait()  # the worker writes for as long as it takes
            return []

    runner, chat = Endless(), _Chat()
    delivery = a_delivery(chat, runner, sessionmaker, "sqlite://", "en", 77)
    task = runner.start(77, delivery)
    await asyncio.wait_for(writing.wait(), 10)
    await runner.stop(5)
    assert task.cancelled() and not runner.busy(77)
    assert chat.texts == [] and chat.documents == []
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Delivery).where(Delivery.chat_id == 77))).all()
    assert [(r.topic, r.status) for r in rows] == [(ALERT_TOPIC, "pending")]
    assert rows[0].text is not None and rows[0].text.startswith("⚠️ Your export was cut short")
