"""`consultbot migrate` and `consultbot backup`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import load_settings
from consultbot.common import Failure, migrate

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


def cmd_migrate(args: argparse.Namespace) -> None:
    migrate(load_settings())
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
