"""Exports read back as a spreadsheet user would (csv module, openpyxl): the seed's counts,
pseudonymised responses, ideas and comments with their decisions, on SQLite and PostgreSQL;
the command line and its progress bar (/export in the bot: tests/e2e/test_export_e2e.py)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import Consultation, Role, load_consultation
from bot.organisers.export import (
    ALL_KINDS,
    ExportFormat,
    ExportKind,
    ProgressBar,
    export,
    kinds_for,
)
from bot.organisers.export_handlers import parse_arguments
from storage.db import make_engine, make_sessionmaker, upgrade
from storage.repositories import export as repo
from storage.repositories.ideas import IdeaRepository
from storage.repositories.members import MemberRepository
from tests.support import (
    DEFAULT_CONSULTATION,
    REPO,
    SEED_COUNTS,
    SEED_RESPONDENTS,
    answer_survey,
    seed_answers,
)

T0 = datetime(2020, 5, 10, 9, 0, tzinfo=UTC)
LANGUAGES = ["fr", "fr", "fr", "fr", "nl", "nl", "nl", "en", "en", "fr"]
SECRET_NAME = "Zéphyrine"  # a respondent's name: must appear in no export


async def seed(
    sessionmaker: async_sessionmaker[AsyncSession], consultation: Consultation, t0: datetime = T0
) -> None:
    """The seed's ten respondents (and one unfinished draft), three ideas, three comments.
    The answers are stored as the bot stores them: `t0` (and the next two hours) must fall
    while the consultation's survey is open."""
    async with sessionmaker() as session:
        members = MemberRepository(session)
        for i, answers in enumerate(seed_answers()):
            member, _ = await members.get_or_create(1000 + i, f"{SECRET_NAME} {i}")
            await members.set_language(member, LANGUAGES[i])
            await members.add_role(member, Role.AMBASSADOR)
            submitted = t0 + timedelta(minutes=10 * (SEED_RESPONDENTS - i))
            await answer_survey(session, consultation, member.id, answers, submitted)
        draft_member, _ = await members.get_or_create(2000, "Draft")
        draft = {"challenges": ["nuisances"]}
        await answer_survey(session, consultation, draft_member.id, draft, t0, submit=False)

        ideas = IdeaRepository(session)
        now = T0 + timedelta(days=10)
        a = await ideas.create(consultation.id, "inclusion", 1000, "A", "Bancs", "Des bancs", now)
        b = await ideas.create(consultation.id, "strategy", 1001, "B", "Wifi", "Du wifi", now)
        await ideas.create(consultation.id, "nuisances", 1002, "C", "Pending", "=1+1", now)
        await ideas.decide(a.id, "approved", 3001, "Mona", None, now + timedelta(hours=1))
        await ideas.decide(b.id, "rejected", 3001, "Mona", "duplicate", now + timedelta(hours=2))
        for member_id in (1003, 1004):
            await ideas.set_support(a.id, member_id, True, now)
        first = await ideas.add_comment(a.id, 1005, "D", "Oui !", None, now)
        await ideas.add_comment(a.id, 1006, "E", "D’accord", first.id, now)
        spam = await ideas.add_comment(a.id, 1007, "F", "spam", None, now)
        await ideas.hide_comment(spam.id, "Mona")
        await session.commit()


def read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "CSV without the UTF-8 BOM"
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def read_sheet(path: Path, sheet: str) -> list[dict[str, object]]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    rows = list(workbook[sheet].iter_rows(values_only=True))
    workbook.close()
    headers = [str(h) for h in rows[0]]
    # Read-only mode drops trailing empty cells: pad them back.
    return [
        dict(zip(headers, (*row, *([None] * (len(headers) - len(row)))), strict=True))
        for row in rows[1:]
    ]


def option_columns(rows: list[dict[str, object]], question: str) -> dict[str, int]:
    """Sum of each `question:option` 0/1 column."""
    sums: Counter[str] = Counter()
    for row in rows:
        for key, value in row.items():
            if key.startswith(f"{question}:") and value not in (None, ""):
                sums[key.split(":", 1)[1]] += int(value)  # type: ignore[call-overload]
    return dict(sums)


@pytest.fixture
def consultation() -> Consultation:
    return load_consultation(DEFAULT_CONSULTATION)


async def test_csv_export_reads_back_with_the_seed_counts(
    sessionmaker: async_sessionmaker[AsyncSession], consultation: Consultation, tmp_path: Path
) -> None:
    await seed(sessionmaker, consultation)
    progress: list[tuple[int, int]] = []
    async with sessionmaker() as session:
        paths = await export(
            session,
            consultation,
            ALL_KINDS,
            ExportFormat.CSV,
            tmp_path,
            progress=lambda d, t: progress.append((d, t)),
        )
    assert [p.name for p in paths] == [f"deconfinement-2020-{k}.csv" for k in ALL_KINDS]
    everything = b"".join(p.read_bytes() for p in paths).decode("utf-8-sig")
    assert SECRET_NAME not in everything

    responses = read_csv(paths[0])
    assert len(responses) == SEED_RESPONDENTS  # the draft is left out
    for question, counts in SEED_COUNTS.items():
        assert {o: n for o, n in option_columns(responses, question).items() if n} == counts  # type: ignore[arg-type]
    # Pseudonyms in submission order (the last seeded member submitted first), local times.
    assert [r["respondent"] for r in responses] == [str(n) for n in range(1, 11)]
    assert responses[0]["submitted_at"] == "2020-05-10 11:10:00"  # 09:10 UTC in Brussels
    assert Counter(r["language"] for r in responses) == Counter(LANGUAGES)
    assert Counter(r["rehab_priority"] for r in responses) == {"yes": 4, "no": 6}
    # A conditional question never asked is empty; the seed's single choice otherwise.
    assert Counter(r["rehab_focus"] for r in responses) == {"": 6, "victims": 3, "authors": 1}

    ideas = {r["title"]: r for r in read_csv(paths[1])}
    assert ideas["Bancs"]["status"] == "approved" and ideas["Bancs"]["supports"] == "2"
    assert ideas["Bancs"]["comments"] == "2"  # the hidden one is not counted
    assert ideas["Bancs"]["decided_by"] == "Mona" and ideas["Bancs"]["decided_at"]
    assert ideas["Wifi"]["decision"] == "rejected"
    assert ideas["Wifi"]["reject_reason"] == "duplicate"
    assert ideas["Pending"]["decision"] == "" and ideas["Pending"]["decided_at"] == ""
    assert ideas["Pending"]["text"] == "'=1+1"  # a member's text never runs as a formula
    assert ideas["Bancs"]["project_title"].startswith("L’inclusion")

    comments = read_csv(paths[2])
    assert Counter(c["status"] for c in comments) == {"visible": 2, "hidden": 1}
    assert [c["reply_to"] for c in comments][1] == comments[0]["comment"]

    results = read_csv(paths[3])
    assert {r["language"] for r in results} == {"fr", "nl", "en"}
    for lang in ("fr", "nl", "en"):
        for question, counts in SEED_COUNTS.items():
            rows = [r for r in results if r["language"] == lang and r["question"] == question]
            ranked = sorted(counts.items(), key=lambda item: -item[1])  # ties: file order
            assert [(r["option"], int(r["count"])) for r in rows] == ranked
            assert [r["rank"] for r in rows] == [str(n) for n in range(1, len(rows) + 1)]
            for r in rows:  # the per-language counts add up to the count
                assert sum(int(r[f"count_{x}"]) for x in ("fr", "nl", "en")) == int(r["count"])
    en = next(r for r in results if r["language"] == "en" and r["option"] == "living_together")
    assert en["option_label"].startswith("Living together")
    by_commune = read_csv(paths[4])  # tests/test_results_communes.py reads it closely
    assert {r["commune"] for r in by_commune} == {"other"}  # the seed's members gave none
    assert progress[0] == (0, len(responses) + 3 + 3 + len(results) + len(by_commune))
    assert progress[-1][0] == progress[-1][1]


async def test_xlsx_export_has_one_sheet_per_kind(
    sessionmaker: async_sessionmaker[AsyncSession], consultation: Consultation, tmp_path: Path
) -> None:
    await seed(sessionmaker, consultation)
    async with sessionmaker() as session:
        [path] = await export(session, consultation, ALL_KINDS, ExportFormat.XLSX, tmp_path)
    assert path.name == "deconfinement-2020-all.xlsx"
    responses = read_sheet(path, "responses")
    assert len(responses) == SEED_RESPONDENTS
    for question, counts in SEED_COUNTS.items():
        assert {o: n for o, n in option_columns(responses, question).items() if n} == counts
    assert isinstance(responses[0]["submitted_at"], datetime)
    ideas = {row["title"]: row for row in read_sheet(path, "ideas")}
    assert len(ideas) == 3 and ideas["Pending"]["text"] == "=1+1"  # text, not a formula
    workbook = openpyxl.load_workbook(path)
    texts = [c for row in workbook["ideas"].iter_rows() for c in row if c.value == "=1+1"]
    assert [c.data_type for c in texts] == ["s"]
    workbook.close()
    assert len(read_sheet(path, "comments")) == 3
    results = read_sheet(path, "results")
    top = [r for r in results if r["language"] == "nl" and r["rank"] == 1]
    assert {r["question"]: r["count"] for r in top} == {
        q: max(c.values()) for q, c in SEED_COUNTS.items()
    } | {"rehab_priority": 4, "rehab_focus": 3}  # a yes/no scale keeps its order: Ja (4) first


async def test_members_texts_stay_texts_in_a_workbook(
    sessionmaker: async_sessionmaker[AsyncSession], consultation: Consultation, tmp_path: Path
) -> None:
    """Whatever a member typed is a string cell: no formula, no number, no link; a control
    character (which XML cannot carry) is written as the escape Excel reads back."""
    texts = ["=SUM(A1:A9)", "+32 470 12 34 56", "-1", "https://example.org", "bip\x07", "  "]
    async with sessionmaker() as session:
        await MemberRepository(session).get_or_create(1000, "A")
        ideas = IdeaRepository(session)
        for i, text in enumerate(texts):
            await ideas.create(consultation.id, "inclusion", 1000, "A", f"t{i}", text, T0)
        await session.commit()
        [path] = await export(
            session, consultation, kinds_for("ideas"), ExportFormat.XLSX, tmp_path
        )
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["ideas"]
    header = [c.value for c in sheet[1]]
    assert all(c.font.bold for c in sheet[1]) and header[3:5] == ["title", "text"]
    rows = list(sheet.iter_rows(min_row=2))
    cells = [row[header.index("text")] for row in rows]
    assert [c.value for c in cells] == [*texts[:4], "bip_x0007_", "  "]
    assert {c.data_type for c in cells} == {"s"}
    supports = [row[header.index("supports")] for row in rows]
    assert [(c.value, c.data_type) for c in supports] == [(0, "n")] * len(texts)
    submitted = rows[0][header.index("submitted_at")]
    assert submitted.value == datetime(2020, 5, 10, 11, 0)  # 09:00 UTC in Brussels
    assert submitted.is_date and submitted.number_format == "yyyy-mm-dd h:mm:ss"
    workbook.close()


@pytest.mark.parametrize("batch", [1, 2, 3])
async def test_responses_are_read_in_pages_in_submission_order(
    sessionmaker: async_sessionmaker[AsyncSession], consultation: Consultation, batch: int
) -> None:
    """Keyset pages of any size give every submitted response once, in (submitted_at, id)
    order: ties on the time are broken by the response's id."""
    answers = seed_answers()[0]
    async with sessionmaker() as session:
        members = MemberRepository(session)
        for i in range(7):
            member, _ = await members.get_or_create(1000 + i, f"m{i}")
            # 0, 2 and 4 submit at the same minute, after 1, 3, 5 and 6.
            at = T0 + timedelta(minutes=5 if i in (0, 2, 4) else 1)
            await answer_survey(session, consultation, member.id, answers, at)
        await session.commit()
        pages = [page async for page in repo.submitted_responses(session, consultation.id, batch)]
    assert all(len(page) == batch for page in pages[:-1]) and pages[-1]
    read = [response for page in pages for response in page]
    keys = [(r.submitted_at, r.response_id) for r in read]
    assert keys == sorted(keys) and len(set(keys)) == 7
    assert [r.submitted_at for r in read] == [T0 + timedelta(minutes=1)] * 4 + [
        T0 + timedelta(minutes=5)
    ] * 3
    assert all(r.choices == {q: set(o) for q, o in answers.items()} for r in read)


async def test_one_kind_and_an_empty_database(
    sqlite_url: str, consultation: Consultation, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    try:
        async with make_sessionmaker(engine)() as session:
            [ideas] = await export(
                session, consultation, kinds_for("ideas"), ExportFormat.XLSX, tmp_path
            )
            [responses] = await export(
                session, consultation, kinds_for("responses"), ExportFormat.CSV, tmp_path
            )
    finally:
        await engine.dispose()
    assert ideas.name.endswith("-ideas.xlsx") and read_sheet(ideas, "ideas") == []
    assert read_csv(responses) == []
    with pytest.raises(ValueError):
        kinds_for("everything")


def test_progress_bar_draws_to_the_end() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, always=True)
    for done in (0, 500, 1000):
        bar(done, 1000)
    assert out.getvalue().endswith("[##############################] 1000/1000 rows\n")
    assert "500/1000" in out.getvalue()
    quiet = io.StringIO()
    ProgressBar(quiet)(1, 2)  # not a terminal and not asked: nothing
    assert quiet.getvalue() == ""


def test_export_arguments() -> None:
    assert parse_arguments(None) == (ALL_KINDS, ExportFormat.XLSX)
    assert parse_arguments("csv ideas") == ((ExportKind.IDEAS,), ExportFormat.CSV)
    assert parse_arguments("ALL xlsx") == (ALL_KINDS, ExportFormat.XLSX)
    assert parse_arguments("pdf") is None


def test_command_line_export(tmp_path: Path, consultation: Consultation) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    import asyncio

    async def prepare() -> None:
        engine = make_engine(url)
        try:
            await seed(make_sessionmaker(engine), consultation)
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "consultbot", "export", "--what", "results", "--out", str(out)],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": url,
            "CONSULTATION_FILE": str(DEFAULT_CONSULTATION),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [printed] = result.stdout.split()
    rows = read_csv(Path(printed))
    fr = [r for r in rows if r["language"] == "fr" and r["question"] == "challenges"]
    assert {r["option"]: int(r["count"]) for r in fr} == SEED_COUNTS["challenges"]
    # The export is in the audit log: who (the command line's user), what, how many rows.
    audit = subprocess.run(
        [sys.executable, "-m", "consultbot", "audit"],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": url,
            "CONSULTATION_FILE": str(DEFAULT_CONSULTATION),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    [line] = [x for x in audit.stdout.splitlines() if " export " in x]
    assert "command line (" in line and f"results={len(rows)} rows={len(rows)}" in line
    bad = subprocess.run(
        [sys.executable, "-m", "consultbot", "export", "--format", "pdf"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
