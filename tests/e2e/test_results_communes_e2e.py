"""The results broadcast per commune, end to end: the real bot process, officials invited by
`consultbot invite official --commune X`, three communes of 12, 7 and 2 respondents. The
officials of the first two read their commune's counts beside the network's, both exact, in
their language; the third's read the network's and why, never the two."""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import Consultation, load_consultation
from bot.i18n import Translator, percent, typeset
from playground import BotAPIEmulator
from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.repositories.communes import CommuneRepository
from storage.repositories.members import MemberRepository
from tests.e2e.conftest import E2E
from tests.support import REPO, answer_survey, seed_answers

TR = Translator()
GROUPS = {"namur": 12, "liege": 7, "arlon": 2}
# (user id, name, language) of each commune's official.
OFFICIALS = {
    "namur": (4101, "Nadia", "fr"),
    "liege": (4102, "Luc", "nl"),
    "arlon": (4103, "Ann", "en"),
}
QUESTIONS = 7


def plain(html: str) -> str:
    return re.sub(r"</?[a-z]+>", "", html)


async def respondents(database_url: str, c: Consultation) -> dict[str, list[dict[str, list[str]]]]:
    """21 members without a role (nobody to broadcast to) who answered, in three communes."""
    await upgrade_async(database_url)
    engine = make_engine(database_url)
    sessionmaker: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
    seed, n, out = seed_answers(), 0, {}
    try:
        async with sessionmaker() as session:
            for commune, size in GROUPS.items():
                out[commune] = []
                for _ in range(size):
                    answers = seed[n % len(seed)]
                    await MemberRepository(session).get_or_create(5000 + n, f"r{n}")
                    await CommuneRepository(session).set(5000 + n, commune, datetime.now(UTC))
                    await answer_survey(session, c, 5000 + n, answers)
                    out[commune].append(answers)
                    n += 1
    finally:
        await engine.dispose()
    return out


async def invite(database_url: str, commune: str) -> str:
    """`consultbot invite official --commune X`, as an organiser runs it: the link's payload."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "consultbot",
        "invite",
        "official",
        "--commune",
        commune,
        "--username",
        "consultbot_test_bot",
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().strip().splitlines()[-1].split("?start=", 1)[1]


def counted(answers: list[dict[str, list[str]]]) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    seen: Counter[str] = Counter()
    chosen: Counter[tuple[str, str]] = Counter()
    for a in answers:
        for qid, options in a.items():
            seen[qid] += 1
            chosen.update((qid, o) for o in options)
    return seen, chosen


def texts(emu: BotAPIEmulator, chat_id: int) -> str:
    return "\n".join(e.text for e in emu.delivered(chat_id) if e.kind == "text")


async def test_each_official_gets_their_commune_beside_the_network(e2e: E2E) -> None:
    emu = e2e.emulator
    now = datetime.now(UTC)
    close = now + timedelta(days=1)
    opens = close + timedelta(seconds=2)
    path = e2e.consultation(
        {
            "survey": (now - timedelta(days=3), close),
            "results": (opens, opens + timedelta(days=2)),
            "ideas": (opens + timedelta(days=3), opens + timedelta(days=300)),
        }
    )
    c = load_consultation(path)
    answers = await respondents(e2e.database_url, c)
    payloads = {commune: await invite(e2e.database_url, commune) for commune in OFFICIALS}
    users = {commune: emu.add_user(*person) for commune, person in OFFICIALS.items()}

    bot = e2e.bot(path)
    await bot.start()
    for commune, user in users.items():
        lang = OFFICIALS[commune][2]
        await user.send(f"/start {payloads[commune]}")
        await user.wait_for_message(TR.gettext("✅ Invitation acceptée : bienvenue !", locale=lang))

    e2e.move_clock(opens + timedelta(seconds=1))  # the survey closes, the results open

    def head(commune: str) -> str:
        _id, _name, lang = OFFICIALS[commune]
        name = c.commune(commune).label(lang, c.source_language)  # type: ignore[union-attr]
        text = TR.ngettext(
            "{commune} : {local} · réseau : {n} répondant",
            "{commune} : {local} · réseau : {n} répondants",
            21,
            locale=lang,
        ).format(commune=name, local=GROUPS[commune], n=21)
        return typeset(text, lang)

    arlon_id, _name, arlon_lang = OFFICIALS["arlon"]
    why = TR.gettext(
        "Trop peu de réponses à {commune} (moins de {min}) pour les montrer séparément : "
        "voici celles du réseau.",
        locale=arlon_lang,
    ).format(commune="Arlon", min=5)
    network = TR.ngettext("{n} répondant", "{n} répondants", 21, locale=arlon_lang).format(n=21)

    def arrived() -> bool:
        return (
            all(head(m) in texts(emu, OFFICIALS[m][0]) for m in ("namur", "liege"))
            and why in texts(emu, arlon_id)
            and network in texts(emu, arlon_id)
            and all(
                len([e for e in emu.delivered(u.id) if e.kind == "photo"]) == QUESTIONS
                for u in users.values()
            )
        )

    await emu.wait_for(arrived, timeout=90, what="the results for the three officials")

    everyone = [a for group in answers.values() for a in group]
    net_seen, net_chosen = counted(everyone)
    for commune in ("namur", "liege"):
        user_id, _name, lang = OFFICIALS[commune]
        name = c.commune(commune).label(lang, c.source_language)  # type: ignore[union-attr]
        text = texts(emu, user_id)
        seen, chosen = counted(answers[commune])
        q = c.question("challenges")
        assert q is not None
        for o in q.options:
            mine, theirs = chosen[(q.id, o.id)], net_chosen[(q.id, o.id)]
            line = plain(
                TR.gettext(
                    "• {option} — {commune} : {local} ({local_percent}) · réseau : {count} "
                    "({percent})",
                    locale=lang,
                ).format(
                    option=c.text(o.text or o.label, lang),
                    commune=name,
                    local=mine,
                    local_percent=percent(mine / seen[q.id], lang),
                    count=theirs,
                    percent=percent(theirs / net_seen[q.id], lang),
                )
            )
            assert typeset(line, lang) in text, (line, text[:1500])

    arlon = texts(emu, arlon_id)
    assert "Arlon:" not in arlon.replace(why, "")  # never the commune's own counts
    assert arlon.index(why) < arlon.index(network)  # why first, then the network's summary
    # Its charts are the network's; Namur's and Liège's their own; each album uploaded once.
    photos = {
        commune: [m for m in emu.media_sends if m.chat_id == OFFICIALS[commune][0]]
        for commune in OFFICIALS
    }
    for commune, sends in photos.items():
        assert [m.source for m in sends] == ["upload"] * QUESTIONS, (commune, sends)
    ids = {commune: {m.file_id for m in sends} for commune, sends in photos.items()}
    assert not ids["namur"] & ids["liege"] and not ids["namur"] & ids["arlon"]
