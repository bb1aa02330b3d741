"""/export's files are written by a worker process: the same files as `export` writes."""

from __future__ import annotations

import os
from pathlib import Path

import openpyxl
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
