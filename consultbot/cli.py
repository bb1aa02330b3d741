"""`consultbot` (= `python -m consultbot`): run the bot, check a consultation file, invite people."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot import redaction
from bot.config import ConfigError, Settings, load_settings
from bot.consultation import (
    Consultation,
    ConsultationError,
    Role,
    check_consultation,
    parse_duration,
)
from consultbot.common import Failure, consultation_file, migrate, require_schema

if TYPE_CHECKING:
    from datetime import timedelta


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    settings.token()
    consultation = consultation_file(args.file or settings.consultation_file)
    # Alembic (some 50 modules, ~12 MB never given back) stays out of the bot's process: the
    # migration runs in a short child, `consultbot migrate`, while this process imports the
    # bot. The child says on stderr, as `migrate` does, why the database cannot be used.
    child = subprocess.Popen(
        [sys.executable, "-m", "consultbot", "migrate"], stdout=subprocess.DEVNULL
    )
    try:
        import bot.app  # noqa: F401  (the slow part of starting, beside the migration)
    finally:
        returncode = child.wait()
    if returncode:
        return returncode
    _run_bot(settings, consultation)
    return 0


def _run_bot(settings: Settings, consultation: Consultation) -> None:
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    from bot.app import run
    from consultbot import event_loop

    try:
        event_loop.run(run(settings, consultation))
    except TelegramUnauthorizedError:
        raise Failure(
            "Telegram rejected BOT_TOKEN (401 Unauthorized): copy the token again from @BotFather."
        ) from None
    except TelegramNetworkError as exc:
        raise Failure(f"cannot reach the Telegram Bot API: {exc}") from None
    except KeyboardInterrupt:
        pass


def cmd_check(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            c, warnings = check_consultation(path)
        except ConsultationError as exc:
            failed += 1
            print(str(exc))
            print(f"{path}: {len(exc.problems)} problem(s)")
            continue
        for warning in warnings:
            print(f"warning: {warning.render(str(path))}")
        print(
            f"{path}: OK — {c.id}, {len(c.phases)} phases, {len(c.questions)} questions, "
            f"{len(c.communes)} communes, "
            f"languages {', '.join(c.languages)}"
        )
    return 1 if failed else 0


def cmd_invite(args: argparse.Namespace) -> None:
    settings = load_settings()
    require_schema(settings)
    if args.role in ("list", "revoke"):
        from consultbot.people import invitations

        print(asyncio.run(invitations(settings, args.role, args.id)))
        return
    if args.id is not None:
        raise Failure(f"invite {args.role}: unexpected argument {args.id!r}")
    try:
        expires = parse_duration(args.expires) if args.expires else None
    except ValueError as exc:
        raise Failure(str(exc)) from None
    if args.uses is not None and args.uses < 1:
        raise Failure("--uses must be at least 1")
    commune = _commune(args.commune, args.file or settings.consultation_file)
    print(
        asyncio.run(_invite(settings, Role(args.role), args.uses, expires, args.username, commune))
    )


def _commune(wanted: str | None, path: Path) -> str | None:
    """--commune as an id of the consultation's communes, or a postal code or name that
    finds exactly one."""
    if wanted is None:
        return None
    from bot.communes.lookup import CommuneDirectory

    consultation = consultation_file(path)
    directory = CommuneDirectory(consultation.communes, consultation.source_language)
    if not directory:
        raise Failure(f"--commune: the consultation {path} lists no communes")
    if directory.get(wanted) is not None:
        return wanted
    found = directory.search(wanted)
    if len(found.communes) == 1 and not found.more:
        return found.communes[0].id
    if not found.communes:
        raise Failure(f"--commune {wanted}: no commune of {path} has this id, postal code or name")
    names = ", ".join(
        f"{c.id} ({directory.label(c, directory.source_language)})" for c in found.communes
    )
    raise Failure(f"--commune {wanted} could be {names}{', …' if found.more else ''}: give its id")


async def _invite(
    settings: Settings,
    role: Role,
    uses: int | None,
    expires: timedelta | None,
    username: str | None,
    commune: str | None = None,
) -> str:
    from datetime import UTC, datetime

    from bot.members.invitations import create_invitation, invite_link
    from storage.db import make_engine, make_sessionmaker

    if username is None:
        from bot.app import create_bot

        bot = create_bot(settings)
        try:
            username = (await bot.get_me()).username or ""
        except Exception as exc:
            raise Failure(
                f"cannot ask Telegram for the bot's username ({exc}); pass --username"
            ) from None
        finally:
            await bot.session.close()
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            token = await create_invitation(
                session, role, uses, expires, datetime.now(UTC), commune=commune
            )
    finally:
        await engine.dispose()
    return invite_link(username.lstrip("@"), token)


def cmd_playground(args: argparse.Namespace) -> None:
    from bot.phases.rehearsal import phase_choices

    try:  # a development tool, outside the product's wheel: present in a checkout only
        from playground.runner import Playground, PlaygroundError
        from playground.web import serve
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("playground"):
            raise
        raise Failure(
            "the playground is a development tool that ships with the source, not the package: "
            "run `make playground` (or `python -m consultbot playground`) in a checkout"
        ) from None

    source = args.file or load_settings().consultation_file
    consultation = consultation_file(source)
    phase = args.phase or consultation.phases[0].id
    if phase not in phase_choices(consultation):
        raise Failure(f"--phase must be one of {', '.join(phase_choices(consultation))}")
    playground = Playground(source, Path("data/playground"), phase)
    try:
        asyncio.run(serve(playground, args.port))
    except PlaygroundError as exc:
        raise Failure(str(exc)) from None
    except OSError as exc:
        raise Failure(
            f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc}): "
            "choose another port with --port or PLAYGROUND_PORT"
        ) from None


def cmd_rehearse(args: argparse.Namespace) -> None:
    """A compressed copy of the consultation on its own database, on real Telegram."""
    from datetime import UTC, datetime

    from bot.phases.rehearsal import (
        compressed,
        parse_durations,
        parse_start,
        read_document,
        write_copy,
    )
    from bot.ui.presenters import when

    settings = load_settings()
    settings.token()
    source = args.file or settings.consultation_file
    consultation_file(source)
    document, original = read_document(source)
    try:
        durations = parse_durations(args.survey, args.results, args.ideas)
        start = parse_start(args.start, datetime.now(UTC), original.tz)
    except ValueError as exc:
        raise Failure(str(exc)) from None
    folder = Path("data/rehearsal")
    stamp = start.astimezone(original.tz).strftime("%Y%m%d-%H%M")
    copy = write_copy(
        folder / f"consultation-{stamp}.yaml", compressed(document, original, durations, start)
    )
    database = args.database or f"sqlite+aiosqlite:///{folder / f'rehearsal-{stamp}.db'}"
    lang = copy.source_language
    print(f"Rehearsal of {copy.id} on {database} (your DATABASE_URL is not touched):")
    for phase in copy.phases:
        print(
            f"  {phase.id:<10} {when(phase.starts, copy, lang, time=True)} → "
            f"{when(phase.ends, copy, lang, time=True)}"
        )
    print("Invite your colleagues to the bot now; Ctrl+C stops the rehearsal.", flush=True)
    args.file = folder / f"consultation-{stamp}.yaml"
    rehearsal = settings.model_copy(
        update={"database_url": database, "consultation_file": args.file}
    )
    migrate(rehearsal)
    _run_bot(rehearsal, copy)


def parser() -> argparse.ArgumentParser:
    from consultbot import database, operations, people, report

    p = argparse.ArgumentParser(prog="consultbot", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot (applies migrations first)")
    run.add_argument("--file", type=Path, help="consultation file (default: CONSULTATION_FILE)")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="validate consultation files")
    check.add_argument("files", nargs="+", type=Path)
    check.set_defaults(func=cmd_check)
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=database.cmd_migrate)
    backup = sub.add_parser("backup", help="copy the SQLite database (online); pg_dump line")
    backup.add_argument("--out", type=Path, default=None, help="the copy (default: dated)")
    backup.set_defaults(func=database.cmd_backup)
    status = sub.add_parser("status", help="timeline, respondents and outbox progress")
    status.set_defaults(func=operations.cmd_status)
    audit = sub.add_parser(
        "audit", help="who decided, hid, invited, announced, exported or erased what, and when"
    )
    audit.add_argument(
        "--since", default=None, help="e.g. 7d, 48h, or a date 2026-11-30 (default: everything)"
    )
    audit.set_defaults(func=operations.cmd_audit)
    outbox = sub.add_parser("outbox", help="messages that failed for good, and re-queueing them")
    actions = outbox.add_subparsers(dest="action", required=True)
    actions.add_parser("failed", help="list the failed messages (id, date, topic, chat, error)")
    retry = actions.add_parser("retry", help="queue failed messages again")
    retry.add_argument("ids", nargs="*", type=int, help="ids from `consultbot outbox failed`")
    retry.add_argument("--all", action="store_true", help="every failed message")
    retry.add_argument("--yes", action="store_true", help="do not ask before --all")
    outbox.set_defaults(func=operations.cmd_outbox, ids=[], all=False, yes=False)
    invite = sub.add_parser(
        "invite",
        help="create an invitation link (invite ROLE), list them (invite list), "
        "or revoke one (invite revoke ID)",
    )
    invite.add_argument(
        "role", choices=[*(r.value for r in Role), "list", "revoke"], metavar="ROLE|list|revoke"
    )
    invite.add_argument("id", nargs="?", default=None, help="invite revoke: the invitation's id")
    invite.add_argument("--uses", type=int, default=None, help="how many people may use it")
    invite.add_argument("--expires", default=None, help="e.g. 7d, 48h (default: never)")
    invite.add_argument("--username", default=None, help="bot username (default: ask Telegram)")
    invite.add_argument(
        "--commune", default=None, help="those invited live there: its id (or postal code)"
    )
    invite.add_argument("--file", type=Path, help="consultation file (default: CONSULTATION_FILE)")
    invite.set_defaults(func=cmd_invite)
    role = sub.add_parser("role", help="who holds which role; revoke one (at once)")
    role.add_argument("action", choices=["list", "revoke"])
    role.add_argument("member", nargs="?", type=int, default=None, help="a Telegram id")
    role.add_argument(
        "role", nargs="?", default=None, choices=[*(r.value for r in Role), "organiser"]
    )
    role.set_defaults(func=people.cmd_role)
    export = sub.add_parser("export", help="export responses, ideas, comments, results")
    export.add_argument(
        "--what", choices=["responses", "ideas", "comments", "results", "all"], default="all"
    )
    export.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    export.add_argument("--out", type=Path, default=Path("exports"), help="default: exports/")
    export.add_argument("--file", type=Path, help="consultation file (default: CONSULTATION_FILE)")
    export.set_defaults(func=operations.cmd_export)
    report.add_parser(sub)
    play = sub.add_parser("playground", help="the bot without Telegram, in a web page")
    play.add_argument("--port", type=int, default=int(os.environ.get("PLAYGROUND_PORT") or 8080))
    play.add_argument("--phase", default=None, help="the phase open at start (default: the first)")
    play.add_argument("--file", type=Path, help="consultation file (default: CONSULTATION_FILE)")
    play.set_defaults(func=cmd_playground)
    rehearse = sub.add_parser(
        "rehearse", help="the whole timeline in an hour, on real Telegram, on its own database"
    )
    rehearse.add_argument("--survey", default="10m", help="survey phase length (default 10m)")
    rehearse.add_argument("--results", default="5m", help="results phase length (default 5m)")
    rehearse.add_argument("--ideas", default="30m", help="ideas phase length (default 30m)")
    rehearse.add_argument("--start", default="now", help="now, +15m or a date and time")
    rehearse.add_argument("--database", default=None, help="default: data/rehearsal/…db")
    rehearse.add_argument(
        "--file", type=Path, help="consultation file (default: CONSULTATION_FILE)"
    )
    rehearse.set_defaults(func=cmd_rehearse)
    return p


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _settings_if_any() -> Settings | None:
    try:
        return load_settings()
    except ConfigError:
        return None


def log_levels(name: str) -> tuple[int, int]:
    """(root level, aiogram.event level) for LOG_LEVEL. aiogram logs a line per update
    handled, thousands a minute in a crowd: shown at DEBUG only. An unknown name is INFO."""
    level = logging.getLevelName(name.strip().upper())
    if not isinstance(level, int):
        level = logging.INFO
    return level, level if level <= logging.DEBUG else max(level, logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = _settings_if_any()
    level, updates_level = log_levels(settings.log_level if settings else "INFO")
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger("aiogram.event").setLevel(updates_level)
    secrets = settings.secrets() if settings else []
    redaction.install(secrets, LOG_FORMAT)
    # One line per job at start-up is noise: APScheduler speaks up on warnings only.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    try:
        return args.func(args) or 0
    except (ConfigError, Failure) as exc:
        print(f"consultbot: {redaction.redact(str(exc), secrets)}", file=sys.stderr)
        return 2
    except Exception as exc:
        # Whatever the library put in its message (a request URL holds the token): redacted.
        logging.getLogger("consultbot").debug("unexpected error", exc_info=True)
        reason = redaction.redact(f"{type(exc).__name__}: {exc}", secrets)
        print(f"consultbot: unexpected error: {reason}", file=sys.stderr)
        return 1
