"""The command line as a user meets it: clear one-line errors, exit code 2, no traceback."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import DEFAULT_CONSULTATION, REPO

TOKEN = "123456789:AAE" + "x" * 32


def consultbot(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    base["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "consultbot", *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_missing_token(tmp_path: Path) -> None:
    result = consultbot(["run"], tmp_path)
    assert_clean_failure(result, "BOT_TOKEN is not set", "@BotFather")


def test_malformed_token_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BOT_TOKEN=not-a-token\n")
    assert_clean_failure(consultbot(["run"], tmp_path), "BOT_TOKEN does not look like a bot token")


def test_malformed_admin_ids(tmp_path: Path) -> None:
    result = consultbot(["run"], tmp_path, BOT_TOKEN=TOKEN, ADMIN_IDS="12,abc")
    assert_clean_failure(result, "ADMIN_IDS is invalid")


def test_broken_consultation_file(tmp_path: Path) -> None:
    broken = tmp_path / "c.yaml"
    broken.write_text(DEFAULT_CONSULTATION.read_text().replace("kind: survey", "kind: poll", 1))
    shutil.copy(DEFAULT_CONSULTATION.with_name("communes-be.yaml"), tmp_path)  # it refers to it
    result = consultbot(["run"], tmp_path, BOT_TOKEN=TOKEN, CONSULTATION_FILE=str(broken))
    assert_clean_failure(result, "consultation file has 1 problem", "phases[survey].kind")
    missing = consultbot(["run"], tmp_path, BOT_TOKEN=TOKEN, CONSULTATION_FILE="nope.yaml")
    assert_clean_failure(missing, "cannot read the file")


@pytest.mark.parametrize(
    "url",
    ["postgresql+asyncpg://postgres@127.0.0.1:1/nothing", "sqlite+aiosqlite:////proc/no/such.db"],
)
def test_unreachable_database(tmp_path: Path, url: str) -> None:
    result = consultbot(
        ["run"],
        tmp_path,
        BOT_TOKEN=TOKEN,
        DATABASE_URL=url,
        CONSULTATION_FILE=str(DEFAULT_CONSULTATION),
    )
    assert_clean_failure(result, "cannot open the database", "Check DATABASE_URL")


def migrated(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    result = consultbot(["migrate"], tmp_path, DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    return url


def test_run_migrates_in_a_child_and_keeps_alembic_and_redis_out(tmp_path: Path) -> None:
    """`run` migrates in a short child process: Alembic (~12 MB) never enters the bot's own,
    nor redis-py (~6 MB) without REDIS_URL."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    probe = (
        "import sys\n"
        "from consultbot import cli\n"
        "cli._run_bot = lambda settings, consultation: print(\n"
        "    'alembic' in sys.modules, 'redis' in sys.modules, 'bot.app' in sys.modules)\n"
        "sys.exit(cli.main(['run']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={
            **base,
            "PYTHONPATH": str(REPO),
            "BOT_TOKEN": TOKEN,
            "DATABASE_URL": url,
            "CONSULTATION_FILE": str(DEFAULT_CONSULTATION),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "True"]
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() is not None


@pytest.mark.parametrize(
    "command", [["status"], ["audit"], ["export"], ["outbox", "failed"], ["invite", "official"]]
)
def test_commands_other_than_run_and_migrate_never_migrate(
    tmp_path: Path, command: list[str]
) -> None:
    # They migrated the schema from under a running older bot.
    from storage.db import head_revision, upgrade

    db = tmp_path / "db.sqlite"
    url = f"sqlite+aiosqlite:///{db}"
    env = {"DATABASE_URL": url, "CONSULTATION_FILE": str(DEFAULT_CONSULTATION)}
    assert_clean_failure(consultbot(command, tmp_path, **env), "consultbot migrate", "empty")
    assert not db.exists()  # not even created
    upgrade(url, "0006")  # an older bot's schema
    behind = consultbot(command, tmp_path, **env)
    assert_clean_failure(behind, "is at 0006", head_revision(), "consultbot migrate")
    assert sqlite3.connect(db).execute("SELECT version_num FROM alembic_version").fetchone() == (
        "0006",
    )


def test_invite_prints_a_deep_link(tmp_path: Path) -> None:
    url = migrated(tmp_path)
    result = consultbot(
        ["invite", "official", "--uses", "3", "--expires", "7d", "--username", "consult_bot"],
        tmp_path,
        DATABASE_URL=url,
    )
    assert result.returncode == 0, result.stderr
    link = result.stdout.strip().splitlines()[-1]
    assert link.startswith("https://t.me/consult_bot?start=inv_")
    assert len(link.split("inv_", 1)[1]) >= 32
    bad = consultbot(
        ["invite", "official", "--expires", "soon", "--username", "b"], tmp_path, DATABASE_URL=url
    )
    assert_clean_failure(bad, "not a duration")


def test_status_prints_the_timeline(tmp_path: Path) -> None:
    url = migrated(tmp_path)
    result = consultbot(
        ["status"], tmp_path, DATABASE_URL=url, CONSULTATION_FILE=str(DEFAULT_CONSULTATION)
    )
    assert result.returncode == 0, result.stderr
    assert "État de la consultation" in result.stdout
    assert "✔️ 1. Sondage sur vos besoins" in result.stdout  # 2020: every phase is over
    assert "<b>" not in result.stdout


def test_webhook_url_without_secret_refuses_to_start(tmp_path: Path) -> None:
    result = consultbot(["run"], tmp_path, BOT_TOKEN=TOKEN, WEBHOOK_URL="https://bot.example.org")
    assert_clean_failure(result, "WEBHOOK_URL is set without WEBHOOK_SECRET")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("api_url", ["127.0.0.1:8081", "http://exa mple.org", "http://h:99999"])
def test_malformed_api_url_never_prints_the_token(tmp_path: Path, api_url: str) -> None:
    result = consultbot(
        ["run"],
        tmp_path,
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=api_url,
        CONSULTATION_FILE=str(DEFAULT_CONSULTATION),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
    )
    assert_clean_failure(result, "TELEGRAM_API_URL is invalid")
    assert TOKEN not in result.stderr + result.stdout
    assert TOKEN.split(":")[1] not in result.stderr + result.stdout


def test_audit_lists_entries_since(tmp_path: Path) -> None:
    url = migrated(tmp_path)
    env = {"DATABASE_URL": url, "CONSULTATION_FILE": str(DEFAULT_CONSULTATION)}
    empty = consultbot(["audit"], tmp_path, **env)
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.strip() == "no entries"
    invited = consultbot(["invite", "moderator", "--username", "b"], tmp_path, **env)
    assert invited.returncode == 0, invited.stderr
    result = consultbot(["audit", "--since", "7d"], tmp_path, **env)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.strip().splitlines()
    assert "command line  invitation.create invitation 1  role=moderator uses=∞" in line
    later = consultbot(["audit", "--since", "2999-01-01"], tmp_path, **env)
    assert later.stdout.strip() == "no entries"
    bad = consultbot(["audit", "--since", "yesterday"], tmp_path, **env)
    assert_clean_failure(bad, "--since 'yesterday'")


def test_backup_copies_the_live_sqlite_database(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "data" / "consultbot.db"
    url = f"sqlite+aiosqlite:///{db}"
    assert consultbot(["migrate"], tmp_path, DATABASE_URL=url).returncode == 0
    writer = sqlite3.connect(db)  # the bot is running: an open connection, WAL pending
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute(
        "INSERT INTO members (id, first_name, blocked, created_at) "
        "VALUES (5, 'Anne', 0, '2026-01-01')"
    )
    writer.commit()
    out = tmp_path / "copy.db"
    try:
        result = consultbot(["backup", "--out", str(out)], tmp_path, DATABASE_URL=url)
    finally:
        writer.close()
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    copy = sqlite3.connect(out)
    try:
        assert copy.execute("SELECT first_name FROM members").fetchall() == [("Anne",)]
    finally:
        copy.close()
    again = consultbot(["backup", "--out", str(out)], tmp_path, DATABASE_URL=url)
    assert_clean_failure(again, "exists already")
    dated = consultbot(["backup"], tmp_path, DATABASE_URL=url)
    assert dated.returncode == 0 and "consultbot-" in dated.stdout


def test_a_damaged_sqlite_database_is_not_backed_up(tmp_path: Path) -> None:
    # A corrupted file was "copied" with exit code 0.
    db = tmp_path / "consultbot.db"
    url = f"sqlite+aiosqlite:///{db}"
    assert consultbot(["migrate"], tmp_path, DATABASE_URL=url).returncode == 0
    data = bytearray(db.read_bytes())
    page = 4096
    data[page * 2 : page * 2 + 64] = b"\xff" * 64  # a b-tree page's header overwritten
    db.write_bytes(bytes(data))
    out = tmp_path / "copy.db"
    result = consultbot(["backup", "--out", str(out)], tmp_path, DATABASE_URL=url)
    assert_clean_failure(result, "is damaged", "no backup written")
    assert not out.exists()
    started = consultbot(
        ["run"],
        tmp_path,
        DATABASE_URL=url,
        BOT_TOKEN=TOKEN,
        CONSULTATION_FILE=str(DEFAULT_CONSULTATION),
    )
    assert_clean_failure(started, "is damaged", "will not start")


def test_sqlite_backup_then_restore(tmp_path: Path) -> None:
    db = tmp_path / "data" / "consultbot.db"
    url = f"sqlite+aiosqlite:///{db}"
    assert consultbot(["migrate"], tmp_path, DATABASE_URL=url).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO members (id, first_name, blocked, created_at) "
            "VALUES (5, 'Anne', 0, '2026-01-01')"
        )
    out = tmp_path / "backups" / "copy.db"
    assert consultbot(["backup", "--out", str(out)], tmp_path, DATABASE_URL=url).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o600  # members' data: the owner's only
    assert db.stat().st_mode & 0o777 == 0o600 and db.parent.stat().st_mode & 0o777 == 0o700
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM members")
    # The README's restore: the database and its -wal/-shm aside, the backup in its place.
    for suffix in ("", "-wal", "-shm"):
        aside = db.with_name(db.name + suffix)
        if aside.exists():
            aside.rename(aside.with_name(aside.name + ".before-restore"))
    db.write_bytes(out.read_bytes())
    assert consultbot(["migrate"], tmp_path, DATABASE_URL=url).returncode == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT first_name FROM members").fetchall() == [("Anne",)]


def test_postgresql_backup_runs_pg_dump_and_restores(tmp_path: Path, postgres_url: str) -> None:
    # It printed a pg_dump line whose password was the masked "***".
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from tests.support import postgres_database, unique_name

    async def rows(url: str) -> list[tuple[object, ...]]:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text("SELECT id, first_name FROM members"))
                return [tuple(r) for r in result]
        finally:
            await engine.dispose()

    async def insert(url: str) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO members (id, first_name, blocked, created_at) "
                        "VALUES (5, 'Anne', false, now())"
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(insert(postgres_url))
    out = tmp_path / "consultbot.dump"
    result = consultbot(["backup", "--out", str(out)], tmp_path, DATABASE_URL=postgres_url)
    assert result.returncode == 0, result.stderr
    assert "***" not in result.stdout and str(out) in result.stdout
    assert out.stat().st_mode & 0o777 == 0o600
    # The README's restore, into a new database.
    name = unique_name("restored")
    restored = asyncio.run(postgres_database(name, create=True))
    try:
        target = make_url(restored).set(drivername="postgresql").render_as_string(False)
        done = subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={target}", str(out)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert asyncio.run(rows(restored)) == [(5, "Anne")]
        status = consultbot(
            ["status"],
            tmp_path,
            DATABASE_URL=restored,
            CONSULTATION_FILE=str(DEFAULT_CONSULTATION),
        )
        assert status.returncode == 0, status.stderr  # the schema came back at head
    finally:
        asyncio.run(postgres_database(name, create=False))


def test_log_level_is_read_and_per_update_lines_only_at_debug() -> None:
    import logging

    from consultbot.cli import log_levels

    assert log_levels("INFO") == (logging.INFO, logging.WARNING)
    assert log_levels("debug") == (logging.DEBUG, logging.DEBUG)
    assert log_levels("ERROR") == (logging.ERROR, logging.ERROR)
    assert log_levels("chatty") == (logging.INFO, logging.WARNING)


def test_log_level_reaches_the_bot(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        "LOG_LEVEL": "DEBUG",
    }
    debug = subprocess.run(
        [sys.executable, "-m", "consultbot", "migrate"], env=env, capture_output=True, text=True
    )
    env["LOG_LEVEL"] = "WARNING"
    quiet = subprocess.run(
        [sys.executable, "-m", "consultbot", "migrate"], env=env, capture_output=True, text=True
    )
    assert debug.returncode == quiet.returncode == 0, debug.stderr + quiet.stderr
    assert " DEBUG " in debug.stderr
    assert " INFO " not in quiet.stderr and " DEBUG " not in quiet.stderr


def test_invitations_and_roles_are_revoked_from_the_command_line(tmp_path: Path) -> None:
    url = migrated(tmp_path)
    env = {"DATABASE_URL": url}
    made = consultbot(["invite", "moderator", "--username", "consult_bot"], tmp_path, **env)
    assert made.returncode == 0, made.stderr
    listed = consultbot(["invite", "list"], tmp_path, **env)
    assert listed.stdout.splitlines()[1].split("\t")[:2] == ["1", "moderator"]
    assert listed.stdout.splitlines()[1].endswith("active")
    revoked = consultbot(["invite", "revoke", "1"], tmp_path, **env)
    assert revoked.returncode == 0 and "invitation 1 (moderator" in revoked.stdout
    assert "\trevoked " in consultbot(["invite", "list"], tmp_path, **env).stdout
    assert_clean_failure(consultbot(["invite", "revoke", "9"], tmp_path, **env), "no invitation 9")
    assert_clean_failure(consultbot(["invite", "revoke"], tmp_path, **env), "invitation's id")

    db = sqlite3.connect(tmp_path / "db.sqlite")
    db.execute(
        "INSERT INTO members (id, first_name, blocked, created_at) VALUES (77, 'Mia', 0, "
        "'2026-01-01')"
    )
    db.execute("INSERT INTO member_roles (member_id, role) VALUES (77, 'moderator')")
    db.commit()
    assert consultbot(["role", "list"], tmp_path, **env).stdout.split() == [
        "77",
        "moderator",
        "Mia",
    ]
    gone = consultbot(["role", "revoke", "77", "moderator"], tmp_path, **env)
    assert gone.returncode == 0 and "no longer moderator" in gone.stdout
    assert db.execute("SELECT * FROM member_roles").fetchall() == []
    again = consultbot(["role", "revoke", "77", "moderator"], tmp_path, **env)
    assert_clean_failure(again, "does not hold the role moderator")
    assert_clean_failure(
        consultbot(["role", "revoke", "1", "organiser"], tmp_path, **env), "ADMIN_IDS"
    )
    audit = consultbot(
        ["audit"], tmp_path, CONSULTATION_FILE=str(DEFAULT_CONSULTATION), **env
    ).stdout
    assert (
        "invitation.revoke invitation 1" in audit and "member.role member 77  -moderator" in audit
    )
    assert "command line (" in audit
