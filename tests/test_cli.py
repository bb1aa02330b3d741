"""The command line as a user meets it: clear one-line errors, exit code 2, no traceback."""

from __future__ import annotations

import os
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


def test_invite_prints_a_deep_link(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
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
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
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
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
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


def test_backup_on_postgres_prints_the_pg_dump_line(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://bot:secret@db.example:5432/consult"
    result = consultbot(["backup", "--out", "x.dump"], tmp_path, DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert (
        "pg_dump --format=custom --file=x.dump 'postgresql://bot:***@db.example:5432/consult'"
        in (result.stdout)
    )
    assert "secret" not in result.stdout


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
