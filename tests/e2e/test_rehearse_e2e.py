"""`consultbot rehearse` as an organiser runs it: a compressed copy on its own database, and the
scheduler following the compressed timeline (the results arrive when the short survey ends)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.consultation import Role
from playground import BotAPIEmulator
from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.repositories.members import MemberRepository
from tests.e2e.conftest import ADMIN_ID, TOKEN
from tests.support import DEFAULT_CONSULTATION, REPO


async def test_rehearsal_runs_the_compressed_timeline_on_its_own_database(tmp_path: Path) -> None:
    emulator = BotAPIEmulator()
    await emulator.start()
    production = tmp_path / "production.db"
    # A colleague who joined the rehearsal already (so no race with the short survey).
    rehearsal_url = f"sqlite+aiosqlite:///{tmp_path / 'rehearsal.db'}"
    await upgrade_async(rehearsal_url)
    engine = make_engine(rehearsal_url)
    try:
        async with make_sessionmaker(engine)() as session:
            repo = MemberRepository(session)
            member, _ = await repo.get_or_create(1001, "Anne")
            await repo.set_language(member, "fr")
            await repo.add_role(member, Role.AMBASSADOR)
            await session.commit()
    finally:
        await engine.dispose()
    anne = emulator.add_user(1001, "Anne", "fr")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": emulator.base_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{production}",
            "CONSULTATION_FILE": str(DEFAULT_CONSULTATION),
            "ADMIN_IDS": str(ADMIN_ID),
        }
    )
    # The survey started 50 s ago and lasts a minute: the results open 10 s after the start.
    start = (datetime.now(UTC) - timedelta(seconds=50)).isoformat(timespec="seconds")
    log = tmp_path / "rehearse.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "consultbot",
            "rehearse",
            "--survey",
            "1m",
            "--results",
            "1m",
            "--ideas",
            "2m",
            "--start",
            start,
            "--database",
            rehearsal_url,
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        await emulator.wait_for(
            lambda: emulator.calls_to("deleteWebhook") or process.returncode is not None,
            timeout=60,
            what="the rehearsal's bot to start",
        )
        assert process.returncode is None, log.read_text()
        await anne.send("/help")  # the calendar: the compressed dates
        await anne.wait_for_message("Sondage")
        # The scheduler follows the copy: the results reach the member within seconds (one
        # message, its charts on the 📊 button).
        await emulator.wait_for(
            lambda: any(
                "Résultats" in e.text and "📊" in str(e.buttons) for e in anne.transcript()
            ),
            timeout=40,
            what="the results",
        )
        assert list((tmp_path / "data" / "rehearsal").glob("consultation-*.yaml"))
        assert not production.exists()  # the organisers' own database is never touched
        output = log.read_text()
        assert "Rehearsal of deconfinement-2020" in output and "results" in output
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
        await emulator.stop()
    assert emulator.violations == [], emulator.violations
