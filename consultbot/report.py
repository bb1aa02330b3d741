"""`consultbot report`: the council's PDF (bot/results/report.py), written to a file."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.config import Settings, load_settings
from bot.consultation import Consultation


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser(
        "report",
        help="the results as one PDF for the college or the council",
        description="Write the results report (title, dates, respondents, commentary, each "
        "question's chart and counts) as an A4 PDF.",
    )
    report.add_argument("--lang", default=None, help="fr, nl or en (default: the file's first)")
    report.add_argument(
        "--commune", default=None, help="a commune beside the network: its id or postal code"
    )
    report.add_argument(
        "--out", type=Path, default=None, help="the PDF (default: reports/<id>-report-<lang>.pdf)"
    )
    report.add_argument("--file", type=Path, help="consultation file (default: CONSULTATION_FILE)")
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> None:
    from consultbot.cli import _commune
    from consultbot.common import Failure, consultation_file, require_schema

    settings = load_settings()
    path = args.file or settings.consultation_file
    consultation = consultation_file(path)
    lang = args.lang or consultation.source_language
    if lang not in consultation.languages:
        raise Failure(f"--lang {lang}: the consultation is in {', '.join(consultation.languages)}")
    commune = _commune(args.commune, path)
    require_schema(settings)
    from bot.results.report import report_filename

    out: Path = args.out or Path("reports") / report_filename(consultation, lang, commune)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(asyncio.run(_report(settings, consultation, lang, commune)))
    print(out)


async def _report(
    settings: Settings, consultation: Consultation, lang: str, commune: str | None
) -> bytes:
    from bot.context import AppContext
    from bot.i18n import Translator
    from bot.results.report import build_report
    from storage.db import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    try:
        app = AppContext(settings, consultation)
        async with make_sessionmaker(engine)() as session:
            return await build_report(session, app, Translator(), lang, commune)
    finally:
        await engine.dispose()
