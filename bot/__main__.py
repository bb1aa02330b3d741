"""`consultbot` (= `python -m bot`): run the bot, check a consultation file, invite people."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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


def _migrate(settings: Settings) -> None:
    from storage.db import safe_url, upgrade

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


def cmd_run(args: argparse.Namespace) -> None:
    settings = load_settings()
    settings.token()
    consultation = _consultation(args.file or settings.consultation_file)
    _migrate(settings)
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    from bot.app import run

    try:
        asyncio.run(run(settings, consultation))
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
            f"languages {', '.join(c.languages)}"
        )
    return 1 if failed else 0


def cmd_migrate(args: argparse.Namespace) -> None:
    _migrate(load_settings())
    print("database is up to date")


def cmd_backup(args: argparse.Namespace) -> None:
    """An online copy of the SQLite database; on PostgreSQL, the pg_dump line to run."""
    from datetime import UTC, datetime

    from sqlalchemy.engine import make_url

    from storage.db import backup_sqlite, safe_url

    settings = load_settings()
    url = make_url(settings.database_url)
    if url.get_backend_name() == "postgresql":
        target = args.out or Path(f"consultbot-{datetime.now(UTC):%Y%m%d-%H%M%S}.dump")
        print(
            "PostgreSQL: back up with pg_dump (custom format; restore with pg_restore; the "
            "password from PGPASSWORD or ~/.pgpass):\n"
            f"pg_dump --format=custom --file={target} "
            f"'{_libpq_url(url)}'"
        )
        return
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        raise Failure(f"cannot back up {safe_url(settings.database_url)}: not a database file")
    source = Path(url.database)
    if not source.exists():
        raise Failure(f"no database at {source}: nothing to back up")
    out = args.out or source.with_name(
        f"{source.stem}-{datetime.now(UTC):%Y%m%d-%H%M%S}{source.suffix}"
    )
    if out.exists():
        raise Failure(f"{out} exists already: choose another --out")
    backup_sqlite(source, out)
    print(f"database copied to {out}")


def _libpq_url(url: URL) -> str:
    """postgresql+asyncpg://… -> postgresql://… (what pg_dump understands), password hidden."""
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


def cmd_invite(args: argparse.Namespace) -> None:
    settings = load_settings()
    _migrate(settings)
    try:
        expires = parse_duration(args.expires) if args.expires else None
    except ValueError as exc:
        raise Failure(str(exc)) from None
    if args.uses is not None and args.uses < 1:
        raise Failure("--uses must be at least 1")
    print(asyncio.run(_invite(settings, Role(args.role), args.uses, expires, args.username)))


async def _invite(
    settings: Settings, role: Role, uses: int | None, expires, username: str | None
) -> str:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from bot.invitations import create_invitation, invite_link
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
            token = await create_invitation(session, role, uses, expires, datetime.now(UTC))
    finally:
        await engine.dispose()
    return invite_link(username.lstrip("@"), token)


def cmd_status(args: argparse.Namespace) -> None:
    settings = load_settings()
    consultation = _consultation(settings.consultation_file)
    _migrate(settings)
    print(asyncio.run(_status(settings, consultation)))


async def _status(settings: Settings, consultation: Consultation) -> str:
    import html
    import re

    from bot.context import AppContext
    from bot.i18n import Translator
    from bot.status import status_report
    from storage.db import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    try:
        app = AppContext(settings, consultation, make_sessionmaker(engine), Translator())
        async with app.sessionmaker() as session:
            report = await status_report(session, app, consultation.source_language)
    finally:
        await engine.dispose()
    return html.unescape(re.sub(r"<[^>]+>", "", report))


def parser() -> argparse.ArgumentParser:
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
    invite = sub.add_parser("invite", help="create an invitation link")
    invite.add_argument("role", choices=[r.value for r in Role])
    invite.add_argument("--uses", type=int, default=None, help="how many people may use it")
    invite.add_argument("--expires", default=None, help="e.g. 7d, 48h (default: never)")
    invite.add_argument("--username", default=None, help="bot username (default: ask Telegram)")
    invite.set_defaults(func=cmd_invite)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings_level = "INFO"
    logging.basicConfig(
        level=getattr(logging, settings_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per job at start-up is noise: APScheduler speaks up on warnings only.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    try:
        return args.func(args) or 0
    except (ConfigError, Failure) as exc:
        print(f"consultbot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
