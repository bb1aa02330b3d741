"""What every `consultbot` command shares: its one kind of error, the consultation file, and
the database's guards (never start on a damaged file, never use an unknown schema)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bot.config import Settings
from bot.consultation import Consultation, ConsultationError, load_consultation


class Failure(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def consultation_file(path: Path) -> Consultation:
    try:
        return load_consultation(path)
    except ConsultationError as exc:
        count = len(exc.problems)
        raise Failure(
            f"the consultation file has {count} problem(s); run `consultbot check {path}`:\n{exc}"
        ) from None


def refuse_damaged(settings: Settings) -> None:
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


def migrate(settings: Settings) -> None:
    from storage.db import safe_url, upgrade

    refuse_damaged(settings)
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


def require_schema(settings: Settings) -> None:
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


def confirm(question: str, yes: bool) -> None:
    """Destructive commands ask first; `--yes` answers for scripts."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Failure(f"{question} Not asked without a terminal: add --yes to confirm.")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes", "o", "oui", "j", "ja"):
        raise Failure("cancelled: nothing was changed")
