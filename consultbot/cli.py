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
    load_consultation,
    parse_duration,
)

if TYPE_CHECKING:
    from datetime import timedelta

    from sqlalchemy.engine import URL


class Failure(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def _consultation(path: Path) -> Consultation:
    try:
        return load_consultation(path)
    except ConsultationError as exc:
        count = len(exc.problems)
        raise Failure(
            f"the consultation file has {count} problem(s); run `consultbot check {path}`:\n{exc}"
        ) from None


def _refuse_damaged(settings: Settings) -> None:
    from sqlalchemy.engine import make_url

    from storage.db import integrity_problem

    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    db = Path(url.database)
    if db.exists() and db.stat().st_size and (problem := integrity_problem(db, quick=True)):
        raise Failure(
            f"the database {db} is damaged ({problem}): the bot will not start on it. Restore "
            "the last good backup (README: Migrations, backups and restore)."
        )


def _migrate(settings: Settings) -> None:
    from storage.db import safe_url, upgrade

    _refuse_damaged(settings)
    try:
        upgrade(settings.database_url)
    except Exception as exc:  # the driver's own errors differ per backend
        reason = (
            str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            if str(exc)
            else type(exc).__name__
        )
        raise Failure(
            f"cannot open the database {safe_url(settings.database_url)}: {reason}. "
            "Check DATABASE_URL and that the database server is running."
        ) from None


def _require_schema(settings: Settings) -> None:
    """Commands other than `run` and `migrate` never migrate: an older bot may still be
    serving this database, and a schema it does not know would break it."""
    from storage.db import current_revision, head_revision, safe_url

    try:
        current = asyncio.run(current_revision(settings.database_url))
    except Exception as exc:  # the driver's own errors differ per backend
        reason = (
            str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] or type(exc).__name__
        )
        raise Failure(
            f"cannot open the database {safe_url(settings.database_url)}: {reason}. "
            "Check DATABASE_URL and that the database server is running."
        ) from None
    head = head_revision()
    if current != head:
        raise Failure(
            f"the database schema is at {current or 'nothing yet (an empty database)'}; this "
            f"version of consultbot needs {head}. Upgrade it with `consultbot migrate` "
            "(README: Migrations, backups and restore), then run this command again."
        )


def _confirm(question: str, yes: bool) -> None:
    """Destructive commands ask first; `--yes` answers for scripts."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Failure(f"{question} Not asked without a terminal: add --yes to confirm.")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes", "o", "oui", "j", "ja"):
        raise Failure("cancelled: nothing was changed")


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    settings.token()
    consultation = _consultation(args.file or settings.consultation_file)
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


def cmd_migrate(args: argparse.Namespace) -> None:
    _migrate(load_settings())
    print("database is up to date")


def cmd_backup(args: argparse.Namespace) -> None:
    """An online, checked copy: SQLite's backup API, or pg_dump on PostgreSQL."""
    from datetime import UTC, datetime

    from sqlalchemy.engine import make_url

    from storage.db import backup_sqlite, integrity_problem, safe_url

    settings = load_settings()
    url = make_url(settings.database_url)
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}"
    if url.get_backend_name() == "postgresql":
        _pg_dump(url, args.out or Path(f"consultbot-{stamp}.dump"))
        return
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        raise Failure(f"cannot back up {safe_url(settings.database_url)}: not a database file")
    source = Path(url.database)
    if not source.exists():
        raise Failure(f"no database at {source}: nothing to back up")
    out = args.out or source.with_name(f"{source.stem}-{stamp}{source.suffix}")
    if out.exists():
        raise Failure(f"{out} exists already: choose another --out")
    backup_sqlite(source, out)
    problem = integrity_problem(out)
    if problem:
        out.unlink()
        raise Failure(
            f"the database {source} is damaged ({problem}): no backup written. Restore the "
            "last good backup (README: Migrations, backups and restore)."
        )
    print(f"database copied to {out} (integrity checked)")


def _pg_dump(url: URL, out: Path) -> None:
    """pg_dump in its custom format, then read back by pg_restore --list. The password goes
    to pg_dump through PGPASSWORD, never on a command line or in what is printed."""
    import shutil
    import subprocess

    if out.exists():
        raise Failure(f"{out} exists already: choose another --out")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        raise Failure(
            "pg_dump and pg_restore are needed (Debian: apt-get install postgresql-client)"
        )
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch(mode=0o600)
    dumped = subprocess.run(
        ["pg_dump", "--format=custom", f"--file={out}", f"--dbname={_libpq_url(url)}"],
        env=env,
        capture_output=True,
        text=True,
    )
    listed = (
        subprocess.run(["pg_restore", "--list", str(out)], capture_output=True, text=True)
        if dumped.returncode == 0
        else dumped
    )
    if listed.returncode != 0:
        out.unlink(missing_ok=True)
        reason = (listed.stderr or "no message").strip().splitlines()[-1]
        raise Failure(f"pg_dump failed: {reason}")
    print(f"database dumped to {out} (pg_dump custom format; restore with pg_restore)")


def _libpq_url(url: URL) -> str:
    """postgresql+asyncpg://… -> postgresql://… (what pg_dump understands), no password."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def cmd_invite(args: argparse.Namespace) -> None:
    settings = load_settings()
    _require_schema(settings)
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

    consultation = _consultation(path)
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


def cmd_status(args: argparse.Namespace) -> None:
    settings = load_settings()
    consultation = _consultation(settings.consultation_file)
    _require_schema(settings)
    print(asyncio.run(_status(settings, consultation)))


async def _status(settings: Settings, consultation: Consultation) -> str:
    import html
    import re

    from bot.context import AppContext
    from bot.i18n import Translator
    from bot.organisers.status import status_report
    from storage.db import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    try:
        app = AppContext(settings, consultation)
        async with make_sessionmaker(engine)() as session:
            report = await status_report(session, app, Translator(), consultation.source_language)
    finally:
        await engine.dispose()
    return html.unescape(re.sub(r"<[^>]+>", "", report))


def cmd_audit(args: argparse.Namespace) -> None:
    settings = load_settings()
    consultation = _consultation(settings.consultation_file)
    _require_schema(settings)
    from datetime import UTC, datetime

    from bot.organisers.audit import parse_since

    try:
        since = parse_since(args.since, datetime.now(UTC), consultation) if args.since else None
    except ValueError as exc:
        raise Failure(str(exc)) from None
    lines = asyncio.run(_audit(settings, consultation, since))
    print("\n".join(lines) if lines else "no entries")


async def _audit(settings: Settings, consultation: Consultation, since) -> list[str]:  # type: ignore[no-untyped-def]
    from bot.organisers.audit import audit_lines
    from storage.db import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return await audit_lines(session, consultation, since, None)
    finally:
        await engine.dispose()


def cmd_export(args: argparse.Namespace) -> None:
    from bot.organisers.export import ExportFormat, kinds_for

    settings = load_settings()
    consultation = _consultation(args.file or settings.consultation_file)
    _require_schema(settings)
    kinds = kinds_for(args.what)
    paths = asyncio.run(_export(settings, consultation, kinds, ExportFormat(args.format), args.out))
    for path in paths:
        print(path)


async def _export(settings: Settings, consultation: Consultation, kinds, fmt, out: Path):  # type: ignore[no-untyped-def]
    from bot.organisers.export import Actor, ProgressBar, export
    from consultbot.people import cli_actor
    from storage.db import make_engine, make_sessionmaker

    who = Actor(None, cli_actor())
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return await export(
                session, consultation, kinds, fmt, out, progress=ProgressBar(), actor=who
            )
    finally:
        await engine.dispose()


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
    consultation = _consultation(source)
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
    _consultation(source)
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
    _migrate(rehearsal)
    _run_bot(rehearsal, copy)


def cmd_outbox(args: argparse.Namespace) -> int:
    settings = load_settings()
    _require_schema(settings)
    if args.action == "retry" and not args.ids and not args.all:
        raise Failure("outbox retry: give the ids of failed messages, or --all")
    if args.action == "retry" and args.all:
        _confirm("Queue every failed message again? Each is sent once more.", args.yes)
    print(asyncio.run(_outbox(settings, args.action, args.ids, args.all)))
    return 0


async def _outbox(settings: Settings, action: str, ids: list[int], everything: bool) -> str:
    from datetime import UTC, datetime

    from storage.db import make_engine, make_sessionmaker
    from storage.repositories.outbox import OutboxRepository

    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            repo = OutboxRepository(session)
            if action == "failed":
                rows = await repo.failed()
                if not rows:
                    return "no failed messages"
                lines = [f"{len(rows)} failed message(s), newest first:"]
                for row in rows:
                    text = " ".join((row.text or "").split())[:60]
                    lines.append(
                        f"{row.id}\t{row.created_at:%Y-%m-%d %H:%M}\t{row.topic}\t"
                        f"chat {row.chat_id}\t{row.error}\t{text}"
                    )
                lines.append("re-queue: consultbot outbox retry ID [ID...] | --all")
                return "\n".join(lines)
            count = await repo.requeue_failed(datetime.now(UTC), None if everything else ids)
            await session.commit()
    finally:
        await engine.dispose()
    if not everything and count < len(set(ids)):
        return f"{count} message(s) queued again (the other ids are not failed messages)"
    return f"{count} message(s) queued again; a running bot sends them within a second"


def parser() -> argparse.ArgumentParser:
    from consultbot import people, report

    p = argparse.ArgumentParser(prog="consultbot", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot (applies migrations first)")
    run.add_argument("--file", type=Path, help="consultation file (default: CONSULTATION_FILE)")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="validate consultation files")
    check.add_argument("files", nargs="+", type=Path)
    check.set_defaults(func=cmd_check)
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)
    backup = sub.add_parser("backup", help="copy the SQLite database (online); pg_dump line")
    backup.add_argument("--out", type=Path, default=None, help="the copy (default: dated)")
    backup.set_defaults(func=cmd_backup)
    status = sub.add_parser("status", help="timeline, respondents and outbox progress")
    status.set_defaults(func=cmd_status)
    audit = sub.add_parser(
        "audit", help="who decided, hid, invited, announced, exported or erased what, and when"
    )
    audit.add_argument(
        "--since", default=None, help="e.g. 7d, 48h, or a date 2026-11-30 (default: everything)"
    )
    audit.set_defaults(func=cmd_audit)
    outbox = sub.add_parser("outbox", help="messages that failed for good, and re-queueing them")
    actions = outbox.add_subparsers(dest="action", required=True)
    actions.add_parser("failed", help="list the failed messages (id, date, topic, chat, error)")
    retry = actions.add_parser("retry", help="queue failed messages again")
    retry.add_argument("ids", nargs="*", type=int, help="ids from `consultbot outbox failed`")
    retry.add_argument("--all", action="store_true", help="every failed message")
    retry.add_argument("--yes", action="store_true", help="do not ask before --all")
    outbox.set_defaults(func=cmd_outbox, ids=[], all=False, yes=False)
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
    export.set_defaults(func=cmd_export)
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
