"""The playground's engine: the Bot API emulator, the real bot in its own process against it,
the personas, and the timeline (a shifted copy of the consultation, the bot restarted on it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Consultation, PhaseKind, Role
from bot.phases.rehearsal import read_document, shifted, write_copy
from playground.personas import (
    BOT_USERNAME,
    MODERATION_GROUP_ID,
    MODERATION_GROUP_TITLE,
    MODERATORS,
    NEIGHBOURS,
    ORGANISERS,
    PERSONAS,
    PLAYGROUND_TOKEN,
)
from playground.server import BotAPIEmulator

log = logging.getLogger("consultbot.playground")
READY_TIMEOUT = 90.0
# Settings of the user's environment or .env that must not leak into the playground's bot.
OVERRIDDEN = (
    "BOT_TOKEN",
    "TELEGRAM_API_URL",
    "DATABASE_URL",
    "REDIS_URL",
    "CONSULTATION_FILE",
    "ADMIN_IDS",
    "MODERATION_CHAT_ID",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
)
ROLES = {
    "ambassador": [Role.AMBASSADOR],
    "official": [Role.OFFICIAL],
    "moderator": [Role.MODERATOR],
    "organiser": [],
}


class PlaygroundError(Exception):
    """The bot of the playground did not start; the message ends with its log."""


class Playground:
    def __init__(self, source: Path, data_dir: Path, phase: str) -> None:
        self.source = source
        self.data_dir = data_dir.resolve()
        self.initial_phase = phase
        self.phase = phase
        self.emulator = BotAPIEmulator(bot_username=BOT_USERNAME)
        self.process: asyncio.subprocess.Process | None = None
        self.status = "stopped"  # starting | running | stopped | failed
        self.error: str | None = None
        self.lock = asyncio.Lock()
        self.document, self.original = read_document(source)
        self.consultation: Consultation = self.original

    # ------------------------------------------------------------------ paths

    @property
    def database_path(self) -> Path:
        return self.data_dir / "playground.db"

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.database_path}"

    @property
    def consultation_path(self) -> Path:
        return self.data_dir / "consultation.yaml"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "bot.log"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """A fresh playground: the emulator's chats live in memory, so the database must too."""
        async with self.lock:
            self._remove_database()
            await self._open_emulator()
            await self._prepare_database()
            await self._launch(self.phase)

    async def close(self) -> None:
        async with self.lock:
            await self._stop_bot()
            await self.emulator.stop()

    async def move_to(self, phase: str) -> None:
        """The chosen phase opens now; the bot restarts on the shifted copy and catches up."""
        async with self.lock:
            await self._stop_bot()
            await self._launch(phase)

    async def reset(self) -> None:
        """Everything anew: chats, database, the first phase."""
        async with self.lock:
            await self._stop_bot()
            await self.emulator.stop()
            self._remove_database()
            self.emulator = BotAPIEmulator(bot_username=BOT_USERNAME)
            await self._open_emulator()
            await self._prepare_database()
            await self._launch(self.initial_phase)

    # ------------------------------------------------------------------ steps

    def _remove_database(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.database_path}{suffix}").unlink()

    async def _open_emulator(self) -> None:
        await self.emulator.start()
        for p in PERSONAS:
            self.emulator.add_user(p.user_id, p.name, p.language)
        owner = MODERATORS[0].user_id if MODERATORS else None
        self.emulator.add_group(
            MODERATION_GROUP_ID,
            MODERATION_GROUP_TITLE,
            admins=[m.user_id for m in MODERATORS],
            owner=owner,
        )

    async def _prepare_database(self) -> None:
        """Migrations, then the personas as members (language and role known), so that the
        announcements of the phases reach them as they would reach real members."""
        from storage.db import make_engine, make_sessionmaker, upgrade_async
        from storage.repositories.communes import CommuneRepository
        from storage.repositories.members import MemberRepository

        self.data_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("alembic").setLevel(logging.WARNING)  # the bot's own log has them
        await upgrade_async(self.database_url)
        engine = make_engine(self.database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                repo = MemberRepository(session)
                communes = CommuneRepository(session)
                for p in PERSONAS:
                    member, created = await repo.get_or_create(p.user_id, p.name)
                    if created:
                        await repo.set_language(member, p.language)
                        for role in ROLES[p.role]:
                            await repo.add_role(member, role)
                        if p.commune and self.original.commune(p.commune):
                            await communes.set(p.user_id, p.commune, datetime.now(UTC))
                await session.commit()
                await self._neighbours_answer(session)
        finally:
            await engine.dispose()

    async def _neighbours_answer(self, session: AsyncSession) -> None:
        """NEIGHBOURS' submitted answers (option i + j of question j, for variety), dated
        within the file's own survey: the results then have a commune beside the network."""
        from bot.survey.service import SurveyService
        from storage.repositories.communes import CommuneRepository
        from storage.repositories.members import MemberRepository

        c = self.original
        survey = c.phase(PhaseKind.SURVEY)
        if survey is None or not c.communes:
            return
        at = survey.starts + (survey.ends - survey.starts) / 2
        service = SurveyService(session, c)
        for i, (member_id, commune) in enumerate(NEIGHBOURS):
            _member, created = await MemberRepository(session).get_or_create(member_id, "")
            if not created or c.commune(commune) is None:
                continue
            await CommuneRepository(session).set(member_id, commune, at)
            await session.commit()
            chosen: dict[str, list[str]] = {}
            for j, q in enumerate(c.questions):
                if not q.options or (
                    q.when is not None
                    and not set(q.when.any) & set(chosen.get(q.when.question, []))
                ):
                    continue
                n = max(1, q.min_choices)
                picks = [q.options[(i + j + k) % len(q.options)].id for k in range(n)]
                chosen[q.id] = picks
                await service.save(member_id, q, picks, None, at)
            await service.submit(member_id, at)

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in OVERRIDDEN}
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        env.update(
            {
                "BOT_TOKEN": PLAYGROUND_TOKEN,
                "TELEGRAM_API_URL": self.emulator.base_url,
                "DATABASE_URL": self.database_url,
                "REDIS_URL": "",
                "WEBHOOK_URL": "",
                "CONSULTATION_FILE": str(self.consultation_path),
                "ADMIN_IDS": ",".join(str(p.user_id) for p in ORGANISERS),
                "MODERATION_CHAT_ID": str(MODERATION_GROUP_ID),
            }
        )
        return env

    async def _launch(self, phase: str) -> None:
        self.status, self.error = "starting", None
        now = datetime.now(UTC)
        self.consultation = write_copy(
            self.consultation_path, shifted(self.document, self.original, phase, now)
        )
        self.phase = phase
        ready_before = len(self.emulator.calls_to("deleteWebhook"))
        with self.log_path.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "consultbot",
                "run",
                env=self._environment(),
                stdout=out,
                stderr=out,
            )
        try:
            # Ready when it clears the webhook to poll: migrations and catch-up are done.
            await self.emulator.wait_for(
                lambda: (
                    len(self.emulator.calls_to("deleteWebhook")) > ready_before
                    or self.process is None
                    or self.process.returncode is not None
                ),
                timeout=READY_TIMEOUT,
                what="the playground's bot to start",
            )
        except AssertionError:
            pass
        started = len(self.emulator.calls_to("deleteWebhook")) > ready_before
        if self.process.returncode is not None or not started:
            self.status = "failed"
            self.error = (
                f"the bot did not start; its log ({self.log_path}) ends with:\n{self.log_tail()}"
            )
            raise PlaygroundError(self.error)
        self.status = "running"
        log.info("playground: phase %s open, bot running", phase)

    async def _stop_bot(self) -> None:
        process, self.process = self.process, None
        self.status = "stopped"
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()

    def check(self) -> str:
        """The status, noticing a bot that died on its own (the page then says so)."""
        process = self.process
        if self.status == "running" and process is not None and process.returncode is not None:
            self.status = "failed"
            self.error = (
                f"the bot stopped (exit code {process.returncode}); its log "
                f"({self.log_path}) ends with:\n{self.log_tail()}\nReset to start again."
            )
        return self.status

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def current_phase(self) -> str | None:
        phase = self.consultation.phases and next(
            (p for p in self.consultation.phases if p.starts <= datetime.now(UTC) <= p.ends), None
        )
        return phase.id if phase else None
