"""The organisers' commands on a running consultation: `status`, `audit`, `export` and
`outbox`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.config import Settings, load_settings
from bot.consultation import Consultation
from consultbot.common import Failure, confirm, consultation_file, require_schema


def cmd_status(args: argparse.Namespace) -> None:
    settings = load_settings()
    consultation = consultation_file(settings.consultation_file)
    require_schema(settings)
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
    consultation = consultation_file(settings.consultation_file)
    require_schema(settings)
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
    consultation = consultation_file(args.file or settings.consultation_file)
    require_schema(settings)
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


def cmd_outbox(args: argparse.Namespace) -> int:
    settings = load_settings()
    require_schema(settings)
    if args.action == "retry" and not args.ids and not args.all:
        raise Failure("outbox retry: give the ids of failed messages, or --all")
    if args.action == "retry" and args.all:
        confirm("Queue every failed message again? Each is sent once more.", args.yes)
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
