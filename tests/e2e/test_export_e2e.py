"""/export in the real bot process: organisers get the files as documents, others a refusal."""

from __future__ import annotations

import asyncio
import csv
import io
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl

from bot.consultation import load_consultation
from bot.i18n import Translator
from bot.organisers.export import ALL_KINDS
from storage.db import make_engine, make_sessionmaker, upgrade_async
from tests.e2e.conftest import ADMIN_ID, E2E
from tests.support import SEED_COUNTS, SEED_RESPONDENTS, survey_now
from tests.test_export import option_columns, read_sheet, seed


async def seeded(e2e: E2E) -> Path:
    """A consultation whose survey ended 15 days ago, with the export tests' responses."""
    answered = datetime.now(UTC) - timedelta(days=20)
    path = e2e.consultation(survey_now(answered, survey_days=5))
    await upgrade_async(e2e.database_url)
    engine = make_engine(e2e.database_url)
    try:
        await seed(make_sessionmaker(engine), load_consultation(path), answered)
    finally:
        await engine.dispose()
    return path


async def test_export_command_sends_documents_to_organisers_only(e2e: E2E, tmp_path: Path) -> None:
    path = await seeded(e2e)
    admin = e2e.emulator.add_user(ADMIN_ID, "Olga", "fr")
    member = e2e.emulator.add_user(4242, "Anne", "nl")
    bot = e2e.bot(path)
    await bot.start()

    await member.send("/export")
    await member.wait_for_message("organisatoren")
    assert not e2e.emulator.calls_to("sendDocument")

    await admin.send("/export pdf")
    await admin.wait_for_message("Je n’ai pas compris")

    await admin.send("/export csv")
    await admin.wait_for_message("Export terminé")
    documents = [e for e in admin.transcript() if e.kind == "document"]
    names = [e.message["document"]["file_name"] for e in documents]
    assert names == [f"deconfinement-2020-{k}.csv" for k in ALL_KINDS]
    data = e2e.emulator.file_bytes(documents[0].message["document"]["file_id"])
    assert data is not None and data.startswith(b"\xef\xbb\xbf")
    responses = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(responses) == SEED_RESPONDENTS
    assert {o: n for o, n in option_columns(responses, "inclusion").items() if n} == SEED_COUNTS[
        "inclusion"
    ]  # type: ignore[arg-type]

    await admin.send("/export")
    await e2e.emulator.wait_for(
        lambda: any(
            e.kind == "document" and e.message["document"]["file_name"].endswith("-all.xlsx")
            for e in admin.transcript()
        ),
        what="the xlsx workbook",
    )
    [workbook] = [
        e
        for e in admin.transcript()
        if e.kind == "document" and e.message["document"]["file_name"].endswith("-all.xlsx")
    ]
    data = e2e.emulator.file_bytes(workbook.message["document"]["file_id"])
    assert data is not None
    path = tmp_path / "all.xlsx"
    path.write_bytes(data)
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == list(ALL_KINDS)
    book.close()
    rows = read_sheet(path, "responses")
    assert len(rows) == SEED_RESPONDENTS
    assert {o: n for o, n in option_columns(rows, "inclusion").items() if n} == SEED_COUNTS[
        "inclusion"
    ]
    assert all(isinstance(r["submitted_at"], datetime) for r in rows)
    ideas = {r["title"]: r for r in read_sheet(path, "ideas")}
    assert ideas["Pending"]["text"] == "=1+1" and ideas["Bancs"]["supports"] == 2


async def test_an_export_runs_beside_the_organisers_next_commands(e2e: E2E) -> None:
    """An export takes seconds to minutes: the organiser is told at once that it runs, may
    use the bot meanwhile, and a repeated /export does not start a second one."""
    path = await seeded(e2e)
    emu = e2e.emulator
    admin = emu.add_user(ADMIN_ID, "Olga", "fr")
    bot = e2e.bot(path)
    await bot.start()
    # The files wait at "Telegram": the export is still under way for as long as needed.
    files = emu.hold(method="sendDocument")
    await admin.send("/export xlsx")
    await admin.wait_for_message("Export en cours")
    await emu.wait_for(lambda: files.held >= 1, timeout=60, what="the workbook on its way")
    await admin.send("/export")
    await admin.wait_for_message("déjà en cours")
    await admin.send("/status")
    await admin.wait_for_message("État de la consultation")
    assert not any(e.kind == "document" for e in admin.transcript())
    files.release()
    await admin.wait_for_message("Export terminé")
    documents = [e for e in admin.transcript() if e.kind == "document"]
    assert [e.message["document"]["file_name"] for e in documents] == [
        "deconfinement-2020-all.xlsx"
    ]
    texts = [e.text for e in admin.transcript() if e.direction == "bot" and e.kind == "text"]
    assert sum("Export terminé" in t for t in texts) == 1


async def test_an_export_cut_short_by_a_restart_is_told_after_it(e2e: E2E) -> None:
    """SIGTERM while the files are on their way: the organiser, told they were coming, is
    told by the next process (through the outbox) that the export was cut short, in their
    language."""
    path = await seeded(e2e)
    emu = e2e.emulator
    admin = emu.add_user(ADMIN_ID, "Olga", "nl")
    first = e2e.bot(path, INSTANCE_NAME="export-first")
    await first.start()
    files = emu.hold(method="sendDocument")
    await admin.send("/export xlsx")
    await admin.wait_for_message("Export bezig")
    await emu.wait_for(lambda: files.held >= 1, timeout=60, what="the workbook on its way")
    assert first.process is not None
    first.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        assert await first.process.wait() == 0, first.log_tail()
    assert "stopped cleanly" in first.log_path.read_text()
    notice = Translator().gettext(
        "⚠️ Votre export a été interrompu par un redémarrage du bot : des fichiers "
        "peuvent manquer. Envoyez /export à nouveau.",
        locale="nl",
    )
    assert not any(notice in (e.text or "") for e in admin.transcript())

    files.release()
    second = e2e.bot(path, INSTANCE_NAME="export-second")
    await second.start()
    await admin.wait_for_message("Stuur /export opnieuw")
    texts = [e.text or "" for e in admin.transcript() if e.direction == "bot"]
    assert texts.count(notice) == 1
    # The workbook reached "Telegram" before the stop and may have arrived; never the word
    # that the export was complete.
    assert not any("Export klaar" in t for t in texts)
    # The organiser does as told: the next export arrives whole.
    await admin.send("/export xlsx")
    await admin.wait_for_message("Export klaar")
