"""The results phase end to end: the real bot process broadcasts the ranked summary and the chart
through the outbox to officials (invited by link) and ambassadors, in their languages, with 429s,
a member who blocked the bot, and a SIGKILL in the middle of the broadcast."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import Consultation, PhaseKind, Role, load_consultation
from bot.i18n import Translator, typeset
from playground import BotAPIEmulator, TranscriptEntry
from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.models import Delivery, Member, MemberRole, PhaseTransition
from storage.repositories.members import MemberRepository
from tests.e2e.conftest import ADMIN_ID, E2E, wait_button
from tests.support import (
    REPO,
    SEED_COUNTS,
    SEED_RESPONDENTS,
    answer_survey,
    seed_answers,
    write_document,
)

TR = Translator()
LANGUAGES = ("fr", "nl", "en")
OPEN = ("pending", "sending")


def t(msgid: str, lang: str) -> str:
    return TR.gettext(msgid, locale=lang)


def plain(html: str) -> str:
    """What the member reads: the emulator keeps the rendered text, without the tags."""
    return re.sub(r"</?[a-z]+>", "", html)


# --------------------------------------------------------------------------- set-up helpers


@pytest.fixture
async def database(e2e: E2E) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The test's own connection to the bot's database (migrated first, as `consultbot run`)."""
    await upgrade_async(e2e.database_url)
    engine = make_engine(e2e.database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def seed_ambassadors(
    sessionmaker: async_sessionmaker[AsyncSession],
    consultation: Consultation,
    people: list[tuple[int, str, str]],
    answers: list[dict[str, list[str]]],
) -> None:
    """Members (id, name, language) with the ambassador role; the first ones submit `answers`
    (dated while the survey was open)."""
    async with sessionmaker() as session:
        members = MemberRepository(session)
        for member_id, name, lang in people:
            member, _ = await members.get_or_create(member_id, name)
            await members.set_language(member, lang)
            await members.add_role(member, Role.AMBASSADOR)
        await session.commit()
        for (member_id, _name, _lang), plan in zip(people, answers, strict=False):
            await answer_survey(session, consultation, member_id, plan)


async def invitation_link(database_url: str, role: str, uses: int) -> str:
    """`python -m consultbot invite ROLE --uses N --username ...`, as an organiser runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "consultbot",
        "invite",
        role,
        "--uses",
        str(uses),
        "--username",
        "consultbot_test_bot",
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    link = out.decode().strip().splitlines()[-1]
    assert link.startswith("https://t.me/consultbot_test_bot?start=inv_"), link
    return link


def push_charts(path: Path, roles: list[str]) -> None:
    """The results phase of the file at `path` pushes the charts to these roles."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    for phase in document["phases"]:
        if phase["kind"] == "results":
            phase["push_charts"] = roles
    write_document(path, document)


async def statuses(
    sessionmaker: async_sessionmaker[AsyncSession], topic_prefix: str = ""
) -> list[Delivery]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.topic.startswith(topic_prefix)).order_by(Delivery.id)
        )
        return list(rows.all())


async def settled(sessionmaker: async_sessionmaker[AsyncSession], topic_prefix: str = "") -> bool:
    rows = await statuses(sessionmaker, topic_prefix)
    return bool(rows) and all(r.status not in OPEN for r in rows)


async def blocked_in_db(sessionmaker: async_sessionmaker[AsyncSession], member_id: int) -> bool:
    async with sessionmaker() as session:
        return bool(await session.scalar(select(Member.blocked).where(Member.id == member_id)))


# --------------------------------------------------------------------------- what members see


@dataclass(frozen=True)
class Expected:
    """What a member of one language must receive when the results open."""

    lang: str
    intro: str  # the results phase's text, first
    caption: str  # the chart album's caption (on its first photo), as rendered
    header: str  # the summary's first line


def expected(c: Consultation, lang: str) -> Expected:
    heading = t("📊 <b>Résultats : {title}</b>", lang).format(title=c.text(c.title, lang))
    caption = plain(typeset(heading, lang))  # French: "Résultats\xa0:"
    phase = c.phase(PhaseKind.RESULTS)
    assert phase is not None
    return Expected(lang, typeset("📊 " + c.text(phase.title, lang), lang), caption, caption)


QUESTIONS = 7  # one chart per question (the text questions excepted)


def charts(emu: BotAPIEmulator, chat_id: int, exp: Expected) -> list[TranscriptEntry]:
    """The albums' first photos (the one with the caption)."""
    return [e for e in emu.delivered(chat_id) if e.kind == "photo" and e.text == exp.caption]


def intros(emu: BotAPIEmulator, chat_id: int, exp: Expected) -> list[TranscriptEntry]:
    return [e for e in emu.delivered(chat_id) if e.kind == "text" and e.text.startswith(exp.intro)]


def summaries(emu: BotAPIEmulator, chat_id: int, exp: Expected) -> list[TranscriptEntry]:
    return [
        e
        for e in emu.delivered(chat_id)
        if e.kind == "text" and e.text.startswith(exp.header + "\n")
    ]


def has_results(emu: BotAPIEmulator, chat_id: int, exp: Expected) -> bool:
    return (
        bool(intros(emu, chat_id, exp))
        and bool(charts(emu, chat_id, exp))
        and bool(summaries(emu, chat_id, exp))
    )


def one_messages(emu: BotAPIEmulator, chat_id: int, exp: Expected) -> list[TranscriptEntry]:
    """The default delivery: the phase's text and the summary in one message, with buttons."""
    return [e for e in intros(emu, chat_id, exp) if f"\n\n{exp.header}\n" in e.text and e.buttons]


def summary_of(entry: TranscriptEntry, exp: Expected) -> str:
    return entry.text[entry.text.index(exp.header) :]


def check_summary(c: Consultation, text: str, lang: str) -> None:
    """Every question of SEED_COUNTS: options ranked by count, ties in the file's order,
    labels and question texts in the member's language."""
    respondents = TR.ngettext(
        "{n} répondant", "{n} répondants", SEED_RESPONDENTS, locale=lang
    ).format(n=SEED_RESPONDENTS)
    assert respondents in text.splitlines()[1], text[:300]
    blocks = text.split("\n\n")
    for question_id, counts in SEED_COUNTS.items():
        q = c.question(question_id)
        question_text = typeset(c.text(q.text, lang), lang)
        block = next((b for b in blocks if question_text in b.splitlines()[0]), None)
        assert block is not None, f"{question_id} ({lang}) missing from the summary:\n{text}"
        in_file_order = [(o, counts[o.id]) for o in q.options if o.id in counts]
        ranked = sorted(in_file_order, key=lambda pair: -pair[1])  # stable: ties keep file order
        want = [(typeset(c.text(o.text or o.label, lang), lang), n) for o, n in ranked]
        got = []
        for line in block.splitlines()[1:]:
            if not line.startswith("• "):
                continue
            m = re.fullmatch(r"• (.*) — (\d+) \(\d+\s?%\)", line)
            assert m, line
            got.append((m.group(1), int(m.group(2))))
        assert got == want, f"{question_id} ({lang}):\n{block}"


def limit_report(emu: BotAPIEmulator) -> str:
    """Each limit violation with the sends to its chat, for the failure message."""
    out = []
    for v in emu.limit_violations:
        out.append(repr(v))
        for call in emu.calls:
            if call.params.get("chat_id") == v.chat_id and call.method.startswith("send"):
                said = call.response.get("description", "ok")
                out.append(f"   {call.time:.3f} {call.method}: {said}")
    return "\n".join(out)


# --------------------------------------------------------------------------- test 1


async def test_results_broadcast_reaches_everyone_once(
    e2e: E2E, database: async_sessionmaker[AsyncSession]
) -> None:
    emu = e2e.emulator
    now = datetime.now(UTC)
    # The survey closes tomorrow; the test moves the bot's clock there once set up.
    close = now + timedelta(days=1)
    opens = close + timedelta(seconds=2)
    path = e2e.consultation(
        {
            "survey": (now - timedelta(days=3), close),
            "results": (opens, opens + timedelta(days=2)),
            "ideas": (opens + timedelta(days=3), opens + timedelta(days=300)),
        }
    )
    # The officials get the charts pushed; the ambassadors one message each (📊 on demand).
    push_charts(path, ["official"])
    c = load_consultation(path)
    exp = {lang: expected(c, lang) for lang in LANGUAGES}

    # Ten ambassadors in three languages; their submitted answers are the seed's.
    ambassadors = [(3001 + i, f"Amb{i}", LANGUAGES[i % 3]) for i in range(10)]
    await seed_ambassadors(database, c, ambassadors, seed_answers())
    language = {member_id: lang for member_id, _, lang in ambassadors}
    for member_id, name, lang in ambassadors:
        emu.add_user(member_id, name, lang)
    blocked = emu.user(3005)  # Dutch; blocked the bot while it was down
    blocked.block_bot()
    link = await invitation_link(e2e.database_url, "official", uses=5)
    officials = [emu.add_user(3101, "Griet", "nl"), emu.add_user(3102, "Oliver", "en")]
    language |= {3101: "nl", 3102: "en"}
    admin = emu.add_user(ADMIN_ID, "Organiser", "fr")

    bot = e2e.bot(path)
    await bot.start()

    # The officials open the invitation link while the survey is open.
    payload = link.split("?start=", 1)[1]
    for official in officials:
        lang = language[official.id]
        await official.send(f"/start {payload}")
        await official.wait_for_message(t("✅ Invitation acceptée : bienvenue !", lang))
        await emu.wait_for(
            lambda o=official: any(e.buttons for e in o.transcript()[-2:]),
            what=f"the menu for {official}",
        )
        # Before the results phase, /results says when they come.
        await official.send("/results")
        soon = t("Les résultats seront publiés le {date}.", lang).split("{date}")[0]
        await official.wait_for_message(soon)

    # The survey's opening announcement went out (403 for the member who blocked the bot).
    await emu.wait_for(lambda: settled(database, "announce:"), what="the survey announcement")
    await emu.wait_for(lambda: blocked_in_db(database, blocked.id), what="blocked member in DB")

    # From now on only the broadcast sends: Telegram's limits are enforced, 429s injected.
    emu.enforce_limits(global_per_second=30, per_chat_per_second=1, per_group_per_minute=20)
    photo_fault = emu.inject_fault("sendMediaGroup", code=429, retry_after=1, times=2)
    text_fault = emu.inject_fault("sendMessage", code=429, retry_after=1, times=2)

    members = [m for m, _, _ in ambassadors if m != blocked.id]
    pushed = [o.id for o in officials]
    recipients = members + pushed
    e2e.move_clock(opens + timedelta(seconds=1))  # the survey closes, the results phase opens
    await emu.wait_for(
        lambda: (
            all(has_results(emu, m, exp[language[m]]) for m in pushed)
            and all(one_messages(emu, m, exp[language[m]]) for m in members)
        ),
        timeout=60,
        what="the results for every recipient",
    )
    await emu.wait_for(lambda: settled(database, "results:"), what="all results deliveries")

    # Each official: the phase's text, then one album of charts, then one summary; each
    # ambassador: one message, the phase's text and the summary, with 📊 and 🌐. In their
    # language, ranked as the seed.
    for member_id in pushed:
        lang = language[member_id]
        assert len(intros(emu, member_id, exp[lang])) == 1, emu.render_transcript(member_id)
        assert len(charts(emu, member_id, exp[lang])) == 1, emu.render_transcript(member_id)
        kinds = [e.kind for e in emu.delivered(member_id)][-(QUESTIONS + 2) :]
        assert kinds == ["text"] + ["photo"] * QUESTIONS + ["text"], kinds
        texts = summaries(emu, member_id, exp[lang])
        assert len(texts) == 1, emu.render_transcript(member_id)
        check_summary(c, texts[0].text, lang)
    for member_id in members:
        lang = language[member_id]
        [one] = one_messages(emu, member_id, exp[lang])
        assert [e.kind for e in emu.delivered(member_id)][-1:] == ["text"]
        assert not charts(emu, member_id, exp[lang]), emu.render_transcript(member_id)
        assert one.buttons[0] == [t("📊 Graphiques", lang)]
        assert len(one.buttons[1]) == 2 and all(b.startswith("🌐 ") for b in one.buttons[1])
        check_summary(c, summary_of(one, exp[lang]), lang)
    axes = summary_of(one_messages(emu, 3001, exp["fr"])[0], exp["fr"])
    positions = [axes.index(f"— {n} (", axes.index("2. ")) for n in (7, 6, 5, 4, 1)]
    assert positions == sorted(positions)

    # The member who blocked the bot got nothing and is marked blocked.
    assert emu.delivered(blocked.id) == []
    assert await blocked_in_db(database, blocked.id)

    # The charts went to the officials only: each language's uploaded once (one album).
    sends = [m for m in emu.media_sends if m.method == "sendMediaGroup" and m.chat_id in language]
    assert len(sends) == QUESTIONS * len(pushed)
    for lang in ("nl", "en"):
        mine = [m for m in sends if language[m.chat_id] == lang]
        assert [m.source for m in mine] == ["upload"] * QUESTIONS, mine
    assert len({m.file_id for m in sends}) == QUESTIONS * len(pushed)

    # The 429s were all hit and retried; the outbox never exceeded Telegram's limits.
    assert (photo_fault.hits, text_fault.hits) == (2, 2)
    assert emu.limit_violations == [], limit_report(emu)

    # The transition happened once; the outbox recorded every delivery.
    rows = await statuses(database, "results:")
    assert Counter(r.status for r in rows) == {"sent": 3 * len(pushed) + len(members)}
    # As Telegram counts them: 9 for each official, 1 for each ambassador.
    assert sum(r.weight for r in rows) == (2 + QUESTIONS) * len(pushed) + len(members)
    # Each message refused with a 429 reached its member later, once.
    refused = [(f.method, f.params["chat_id"]) for f in emu.injected_failures]
    assert len(refused) == 4
    for method, chat_id in refused:
        kind = "photo" if method == "sendMediaGroup" else "text"
        assert [e.kind for e in emu.delivered(chat_id)].count(kind) >= 1
    async with database() as session:
        transition = await session.get(PhaseTransition, f"{c.id}:results:open")
        officials_in_db = await session.scalar(
            select(func.count()).select_from(MemberRole).where(MemberRole.role == Role.OFFICIAL)
        )
    assert transition is not None and transition.outcome == f"results to {len(recipients)}"
    assert officials_in_db == 2
    # The organiser's review of the commentary, queued when the survey closed (his chat is
    # paced at one message a second).
    await emu.wait_for(lambda: settled(database, "commentary:"), what="the commentary review")
    review = emu.delivered(ADMIN_ID)[-1]
    assert review.text.startswith(
        plain(t("📝 <b>Commentaire des résultats</b> — version {version}", "fr")).format(version=1)
    )
    assert [b for row in review.buttons for b in row] == [
        t("✅ Approuver", "fr"),
        t("✏️ Modifier", "fr"),
    ]
    all_rows = await statuses(database)
    sent = sum(1 for r in all_rows if r.status == "sent")
    blocked_rows = sum(1 for r in all_rows if r.status == "blocked")
    assert blocked_rows >= 1

    # Interactive replies are not broadcasts: the emulator's limits are off again.
    emu.disable_limits()
    await admin.send("/status")
    report = await admin.wait_for_message(plain(t("<b>État de la consultation</b>", "fr")))
    line = t(
        "Envois : {sent} envoyés, {pending} en attente, {failed} en échec, {blocked} bloqués",
        "fr",
    ).format(sent=sent, pending=0, failed=0, blocked=blocked_rows)
    assert line in report.text, report.text
    assert f"results:open — results to {len(recipients)}" in report.text

    # An ambassador taps 📊 five times: one album, paced by the outbox, uploaded once (no
    # official reads French); a Dutch ambassador's comes by the file_ids of Griet's.
    amelie, bram = emu.user(3001), emu.user(3002)
    for _ in range(5):
        answer = await amelie.click(t("📊 Graphiques", "fr"))
        assert answer.text == t("📊 Les graphiques arrivent.", "fr")
    await emu.wait_for(lambda: len(charts(emu, amelie.id, exp["fr"])) == 1, what="the album")
    await emu.wait_for(lambda: settled(database, "charts"), what="the album asked for")
    assert sum(1 for e in emu.delivered(amelie.id) if e.kind == "photo") == QUESTIONS
    uploads = [m.source for m in emu.media_sends].count("upload")
    await bram.click(t("📊 Graphiques", "nl"))
    await emu.wait_for(lambda: len(charts(emu, bram.id, exp["nl"])) == 1, what="Bram's album")
    assert [m.source for m in emu.media_sends].count("upload") == uploads
    # 🌐: the same message, now in English, with the English buttons.
    await amelie.click("🌐 English")
    [one] = one_messages(emu, amelie.id, exp["en"])
    assert one.edited and one.buttons[0] == ["📊 Charts"]
    check_summary(c, summary_of(one, exp["en"]), "en")
    await emu.wait_for(lambda: settled(database, "charts"), what="the albums asked for")
    assert sum(1 for e in emu.delivered(amelie.id) if e.kind == "photo") == QUESTIONS

    # /results for an official, now that the results are open: the phase's text, the charts
    # and the summary. The charts go by the file_ids of the broadcast's upload: no new upload.
    griet = officials[0]
    uploads = [m.source for m in emu.media_sends].count("upload")
    await griet.send("/results")
    # Her invitation named no commune: asked once, first (her results depend on it).
    decline = t("🤐 Je préfère ne pas le dire", "nl")
    await wait_button(griet, decline)
    await griet.click(decline)
    reply = await griet.wait_for_message(c.text(c.question("strategy_axes").text, "nl")[:40])
    assert "Onder wie ‘Gezamenlijke lokale strategie’ antwoordde op vraag 1" in reply.text
    check_summary(c, reply.text, "nl")
    await emu.wait_for(
        lambda: sum(1 for e in emu.delivered(griet.id) if e.kind == "photo") == 2 * QUESTIONS,
        what="the charts of /results",
    )
    assert len(intros(emu, griet.id, exp["nl"])) == 2
    assert [m.source for m in emu.media_sends].count("upload") == uploads
    # A second /results: the same file_ids again, nothing rendered or uploaded.
    await griet.send("/results")
    await emu.wait_for(
        lambda: sum(1 for e in emu.delivered(griet.id) if e.kind == "photo") == 3 * QUESTIONS,
        what="the charts of a second /results",
    )
    assert [m.source for m in emu.media_sends].count("upload") == uploads

    # The organiser approves the commentary now that the results are out: it follows, last,
    # to every recipient once, in their language; a second press changes nothing.
    answer = await admin.click(t("✅ Approuver", "fr"), message=review)
    audience = len(recipients) + 1  # the organiser too: writing /status made him an ambassador
    assert answer.text == TR.ngettext(
        "✅ Commentaire approuvé : il part vers {n} destinataire des résultats.",
        "✅ Commentaire approuvé : il part vers les {n} destinataires des résultats.",
        audience,
        locale="fr",
    ).format(n=audience)
    # The card says so, and its buttons are gone: it cannot be pressed twice.
    card = await admin.wait_for_message("✅ Approuvé le")
    assert card.buttons == []

    def commentary_of(member_id: int) -> list[TranscriptEntry]:
        heading = plain(t("💬 <b>Le commentaire des organisateurs</b>", language[member_id]))
        return [e for e in emu.delivered(member_id) if e.text.startswith(heading)]

    await emu.wait_for(
        lambda: all(commentary_of(m) for m in recipients), what="the approved commentary"
    )
    await emu.wait_for(lambda: settled(database, "results:"), what="the commentary deliveries")
    twice = {m: len(commentary_of(m)) for m in recipients if len(commentary_of(m)) != 1}
    assert not twice, "\n\n".join(emu.render_transcript(m) for m in twice)
    assert "4 projecten" in commentary_of(officials[0].id)[0].text


# --------------------------------------------------------------------------- test 2


KINDS = ("intro", "chart", "summary")


def results_kind(row: Delivery) -> str:
    if row.media_id is not None:
        return "chart"
    return "intro" if row.dedupe_key.endswith(":intro") else "summary"


def received(emu: BotAPIEmulator, people: dict[int, str], exp: dict[str, Expected]) -> Counter:
    """(chat, 'intro' | 'chart' | 'summary') -> how many times it arrived."""
    counts: Counter[tuple[int, str]] = Counter()
    for member_id, lang in people.items():
        counts[(member_id, "intro")] = len(intros(emu, member_id, exp[lang]))
        counts[(member_id, "chart")] = len(charts(emu, member_id, exp[lang]))
        counts[(member_id, "summary")] = len(summaries(emu, member_id, exp[lang]))
    return counts


async def test_kill_during_broadcast_loses_nobody(
    e2e: E2E, database: async_sessionmaker[AsyncSession]
) -> None:
    emu = e2e.emulator
    now = datetime.now(UTC)
    # The survey is over and the results phase is open: the broadcast starts at the catch-up.
    path = e2e.consultation(
        {
            "survey": (now - timedelta(days=10), now - timedelta(days=2)),
            "results": (now - timedelta(minutes=1), now + timedelta(days=2)),
            "ideas": (now + timedelta(days=3), now + timedelta(days=300)),
        }
    )
    # A broadcast with albums: the charts pushed to every ambassador (text, album, summary).
    push_charts(path, ["ambassador"])
    c = load_consultation(path)
    exp = {lang: expected(c, lang) for lang in LANGUAGES}
    ambassadors = [(4001 + i, f"Amb{i}", LANGUAGES[i % 3]) for i in range(40)]
    await seed_ambassadors(database, c, ambassadors, seed_answers())
    people = {member_id: lang for member_id, _, lang in ambassadors}
    for member_id, name, lang in ambassadors:
        emu.add_user(member_id, name, lang)
    expected_messages = len(KINDS) * len(people)

    # 15 messages/s: 120 deliveries, 360 messages as Telegram counts them (each photo of an
    # album), take about 24 s. The default instance settings: a dead sender's claims wait for
    # nobody once the same slot (host, polling) starts again.
    bot = e2e.bot(path, BROADCAST_RATE="15")
    # start() returns when the emulator has logged a getUpdates call, i.e. when the first long
    # poll *returns*: with no update pending that is 10 s after the bot began sending. Watch the
    # broadcast meanwhile, and kill the bot when a third of it has been delivered.
    starting = asyncio.create_task(bot.start())
    await emu.wait_for(
        lambda: sum(emu.delivery_counts().values()) >= expected_messages // 3 or bot.exited(),
        timeout=60,
        what="a third of the broadcast",
    )
    assert not bot.exited(), f"the bot exited:\n{bot.log_tail()}"
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    await bot.kill()

    before = received(emu, people, exp)
    rows = await statuses(database, "results:")
    assert len(rows) == expected_messages
    sent_before = {(r.chat_id, results_kind(r)) for r in rows if r.status == "sent"}
    sending = {(r.chat_id, results_kind(r)) for r in rows if r.status == "sending"}
    # In flight at the kill: sent to Telegram, not yet recorded as sent.
    in_flight = {key for key in sending if before[key] > 0}
    delivered_before = sum(before.values())
    assert 0 < len(sent_before) < expected_messages
    assert delivered_before < expected_messages, "killed too late: nothing left to resume"
    assert all(before[key] == 1 for key in sent_before)

    await bot.start()
    # Polling again: the broadcast resumes within seconds, not after a stale-claim timeout.
    loop = asyncio.get_running_loop()
    ready, delivered_at_ready = loop.time(), sum(emu.delivery_counts().values())
    await emu.wait_for(
        lambda: sum(emu.delivery_counts().values()) > delivered_at_ready,
        timeout=10,
        what="the broadcast to resume after the restart",
    )
    resumed_after = loop.time() - ready
    await emu.wait_for(
        lambda: all(received(emu, people, exp)[(m, k)] for m in people for k in KINDS),
        timeout=60,
        what="everyone's text, charts and summary after the restart",
    )
    await emu.wait_for(lambda: settled(database, "results:"), what="all results deliveries")

    after = received(emu, people, exp)
    missing = [key for key in after if after[key] == 0]
    duplicated = {key: n for key, n in after.items() if n > 1}
    print(
        f"killed after {delivered_before}/{expected_messages} deliveries: "
        f"{len(sent_before)} recorded sent, {len(sending)} claimed ('sending'), "
        f"{len(in_flight)} of them in flight; duplicates after restart: {duplicated}; "
        f"resumed {resumed_after:.1f} s after the restart"
    )
    assert missing == []
    # Only what was in flight at the kill may arrive twice; nothing recorded as sent does.
    assert set(duplicated) <= in_flight, (duplicated, in_flight)
    assert sum(n - 1 for n in duplicated.values()) <= len(sending)
    assert all(after[key] == 1 for key in sent_before)
    assert Counter(r.status for r in await statuses(database, "results:")) == {
        "sent": expected_messages
    }
    for member_id, lang in list(people.items())[:3]:
        check_summary(c, summaries(emu, member_id, exp[lang])[0].text, lang)
    # The restarted sender re-queued the dead one's claims, and re-used the charts' file_ids.
    assert "interrupted by a crash are queued again" in bot.log_path.read_text()
    assert [m.source for m in emu.media_sends].count("upload") == QUESTIONS * len(LANGUAGES)
    assert bot.starts == 2
