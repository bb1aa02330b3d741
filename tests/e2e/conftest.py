"""End-to-end harness: the real `consultbot run` process against the Bot API emulator."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.i18n import Translator
from playground import BotAPIEmulator, SimUser
from tests.support import REPO, default_document, with_dates, write_document

TOKEN = "123456789:AAE2e-test-token-xxxxxxxxxxxxxxxxxxxxx"
ADMIN_ID = 500


@dataclass
class BotProcess:
    """One `python -m consultbot run` process; its output goes to a log file kept for failures."""

    env: dict[str, str]
    log_path: Path
    emulator: BotAPIEmulator
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    async def start(self, ready_method: str = "deleteWebhook") -> None:
        polls_before = len(self.emulator.calls_to(ready_method))
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "consultbot",
            "run",
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()
        self.starts += 1
        # Ready when it clears the webhook to start polling (or sets it): migrations, catch-up
        # and commands are done by then, and what users send now waits in the queue.
        await self.emulator.wait_for(
            lambda: len(self.emulator.calls_to(ready_method)) > polls_before or self.exited(),
            timeout=60,
            what="the bot to start polling",
        )
        assert not self.exited(), f"the bot exited at start:\n{self.log_tail()}"

    def exited(self) -> bool:
        return self.process is not None and self.process.returncode is not None

    async def kill(self) -> None:
        """SIGKILL: no clean-up at all, as in a crash or a power cut."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class E2E:
    emulator: BotAPIEmulator
    tmp_path: Path
    database_url: str
    bots: list[BotProcess] = field(default_factory=list)

    def consultation(self, dates: dict[str, tuple[datetime, datetime]], **changes: Any) -> Path:
        document = with_dates(default_document(), dates)
        document.update(changes)
        return write_document(self.tmp_path / "consultation.yaml", document)

    def bot(self, consultation: Path, **env: str) -> BotProcess:
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        base.update(
            {
                "PYTHONPATH": str(REPO),
                "BOT_TOKEN": TOKEN,
                "TELEGRAM_API_URL": self.emulator.base_url,
                "DATABASE_URL": self.database_url,
                "CONSULTATION_FILE": str(consultation),
                "ADMIN_IDS": str(ADMIN_ID),
                "THROTTLE_BURST": "1000",
                "BROADCAST_RATE": "30",
                # Every bot of a test shares one clock: move_clock() moves them all.
                "CLOCK_FILE": str(self.tmp_path / "clock"),
            }
        )
        base.update(env)
        bot = BotProcess(base, self.tmp_path / f"bot-{len(self.bots)}.log", self.emulator)
        self.bots.append(bot)
        return bot

    def move_clock(self, to: datetime) -> None:
        """The running bots' "now" becomes `to` (and runs on from there): what falls due
        runs at once, instead of the test waiting for wall-clock dates set seconds ahead."""
        (self.tmp_path / "clock").write_text(str((to - datetime.now(UTC)).total_seconds()))
        for bot in self.bots:
            if bot.process is not None and not bot.exited():
                bot.process.send_signal(signal.SIGUSR1)


@pytest.fixture
async def e2e(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[E2E]:
    emulator = BotAPIEmulator()
    await emulator.start()
    harness = E2E(emulator, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}")
    try:
        yield harness
    finally:
        for bot in harness.bots:
            await bot.stop()
        await emulator.stop()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for bot in harness.bots:
                print(f"--- {bot.log_path.name} ---\n{bot.log_tail()}")
    # Every call the bot made was valid for the Bot API, not deprecated, and to a method the
    # emulator models (checked after the bot stopped).
    emulator.assert_no_violations()
    assert emulator.internal_errors == [], emulator.internal_errors


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


async def wait_button(user: SimUser, text: str, timeout: float = 10) -> None:
    """Until the user's chat shows a button containing `text` (sent or edited in)."""

    def present() -> bool:
        return any(
            text in button
            for entry in user.transcript()[-5:]
            if entry.direction == "bot" and not entry.deleted
            for row in entry.buttons
            for button in row
        )

    await user.emu.wait_for(present, timeout=timeout, what=f"a button {text!r} for {user}")


async def open_survey(user: SimUser, lang: str, timeout: float = 20) -> None:
    """From the menu into the survey: "Répondre au sondage", then the commune screen (met
    once, before the first question) declined."""
    _ = Translator().gettext
    for label in (
        _("📝 Répondre au sondage", locale=lang),
        _("🤐 Je préfère ne pas le dire", locale=lang),
    ):
        await wait_button(user, label, timeout=timeout)
        await user.click(label, timeout=timeout)


async def give_commune(user: SimUser, name: str, postal_code: str = "5000") -> None:
    """The commune screen, met once before the first question: a postal code typed, then the
    button of `name` (the commune's name in the user's language) pressed."""
    await wait_button(user, "🤐")  # "rather not say": the commune screen is on
    await user.send(postal_code)
    await wait_button(user, name)
    await user.click(name)
