"""Issue 18, item 2: the results broadcast is one message per recipient by default, the summary
with "📊 Charts" (the album on demand, through the outbox, once per member, language and
counts) and "🌐" (the summary in another language); `push_charts:` pushes the album to some
roles as before; the organisers' plan counts the messages as Telegram counts them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiogram.methods import EditMessageText
from aiogram.types import Chat, InlineKeyboardMarkup, Message
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.consultation import ConsultationError, Role, load_consultation, parse_consultation
from bot.context import AppContext
from bot.i18n import Translator
from bot.organisers.status import status_report
from bot.phases.transitions import run_due
from bot.results.charts import ChartCache
from bot.results.delivery import CHARTS_TOPIC, ResultsButton
from bot.results.tally import results_heading
from bot.services import AppServices
from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.dialog_state.sql_storage import SQLStorage
from storage.models import Delivery, OutboxMedia
from storage.repositories.members import MemberRepository
from tests.support import answer_survey, default_document, seed_answers, with_dates, write_document
from tests.test_dialogs import NOW, Clock, Harness, button
from tests.test_outbox import ScriptedBot, run_outbox

TR = Translator()
H = timedelta(hours=1)
QUESTIONS = 7  # counted questions of the default consultation: seven charts
# (member, role, language): two ambassadors, an official; the seed's ten respondents besides.
PEOPLE = [(1, Role.AMBASSADOR, "fr"), (2, Role.AMBASSADOR, "nl"), (3, Role.OFFICIAL, "en")]


def fake_charts(results: Any, consultation: Any, lang: str, translator: Any) -> list[bytes]:
    """Distinct bytes per language and question, without matplotlib's seconds."""
    return [f"{lang}-{i}".encode() for i in range(len(results.questions))]


def document(**results_phase: Any) -> dict[str, Any]:
    doc = with_dates(
        default_document(),
        {
            "survey": (NOW - 200 * H, NOW - 2 * H),
            "results": (NOW - H, NOW + 48 * H),
            "ideas": (NOW + 50 * H, NOW + 500 * H),
        },
    )
    for phase in doc["phases"]:
        if phase["kind"] == "results":
            phase.update(results_phase)
    return doc


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Any]:
    engines = []

    async def build(**results_phase: Any) -> Harness:
        url = f"sqlite+aiosqlite:///{tmp_path / f'r{len(engines)}.db'}"
        await upgrade_async(url)
        engine = make_engine(url)
        engines.append(engine)
        sessionmaker = make_sessionmaker(engine)
        path = write_document(tmp_path / f"c{len(engines)}.yaml", document(**results_phase))
        clock = Clock()
        app = AppContext(
            settings=Settings(
                bot_token=None,
                admin_ids=frozenset({99}),
                throttle_burst=10_000,
                callback_answer_deadline=60,
            ),
            consultation=load_consultation(path),
            clock=clock,
        )
        base = AppServices.create(sessionmaker)
        services = replace(base, charts=ChartCache(render=fake_charts))
        h = Harness(app, services, SQLStorage(sessionmaker), clock)
        await seed(sessionmaker, app)
        return h

    yield build
    for engine in engines:
        await engine.dispose()


async def seed(sessionmaker: async_sessionmaker[AsyncSession], app: AppContext) -> None:
    async with sessionmaker() as session:
        repo = MemberRepository(session)
        for member_id, role, lang in PEOPLE:
            member, _ = await repo.get_or_create(member_id, f"m{member_id}")
            await repo.set_language(member, lang)
            await repo.add_role(member, role)
        await session.commit()
        survey = app.consultation.phases[0]
        for i, answers in enumerate(seed_answers(), start=100):
            await repo.get_or_create(i, f"r{i}")
            await answer_survey(session, app.consultation, i, answers, survey.starts + H)


async def deliveries(h: Harness, topic: str) -> list[Delivery]:
    async with h.services.sessionmaker() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.topic == topic).order_by(Delivery.id)
        )
        return list(rows.all())


def as_seen(row: Delivery) -> Message:
    """The message a member sees for an outbox row: its text and its buttons."""
    markup = InlineKeyboardMarkup.model_validate(json.loads(row.reply_markup or "{}"))
    return Message(
        message_id=row.id,
        date=NOW,
        chat=Chat(id=row.chat_id, type="private"),
        text=row.text,
        reply_markup=markup,
    )


def labels(row: Delivery) -> list[list[str]]:
    markup = json.loads(row.reply_markup or "{}")
    return [[b["text"] for b in line] for line in markup.get("inline_keyboard", [])]


def t(msgid: str, lang: str) -> str:
    return TR.gettext(msgid, locale=lang)


async def test_one_message_per_recipient_with_the_two_buttons(make: Any) -> None:
    h = await make()
    assert (await run_due(h.app, h.services))[-1] == "results:open:results to 3"
    rows = await deliveries(h, "results:results")
    assert [r.chat_id for r in rows] == [1, 2, 3]  # one each
    assert all(r.media_id is None and r.weight == 1 for r in rows)
    c = h.app.consultation
    by_chat = {r.chat_id: r for r in rows}
    for member_id, _role, lang in PEOPLE:
        row = by_chat[member_id]
        text = row.text or ""
        # The phase's text first, then the ranked counts, in the member's language.
        assert text.startswith("📊 <b>" + c.text(c.phases[1].title, lang))
        assert c.text(c.question("challenges").text, lang)[:40] in text
        assert TR.ngettext("{n} répondant", "{n} répondants", 10, lang).format(n=10) in text
        others = [
            name
            for code, name in (("fr", "Français"), ("nl", "Nederlands"), ("en", "English"))
            if code != lang
        ]
        assert labels(row) == [[t("📊 Graphiques", lang)], [f"🌐 {n}" for n in others]]
    assert labels(by_chat[3])[0] == ["📊 Charts"]
    # Nothing uploaded, no album queued: the charts wait for a 📊.
    async with h.services.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMedia)) == 0


async def test_charts_once_however_often_tapped(make: Any) -> None:
    h = await make()
    await run_due(h.app, h.services)
    rows = {r.chat_id: r for r in await deliveries(h, "results:results")}
    dp = h.dispatcher()
    amelie = h.client(user_id=1, dp=dp)
    for _ in range(5):
        await amelie.click(as_seen(rows[1]), button("Graphiques"))
    assert h.bot.alerts() == [t("📊 Les graphiques arrivent.", "fr")] * 5
    [album] = await deliveries(h, CHARTS_TOPIC)
    assert (album.chat_id, album.weight) == (1, QUESTIONS)  # one album of seven photos
    assert album.text == results_heading(h.app.consultation, "fr", TR)
    # Bram, in Dutch, asks too: his own album, in Dutch; then Amélie's French ones again.
    bram = h.client(user_id=2, language="nl", dp=dp)
    bram.last_update_id = 200_000
    await bram.click(as_seen(rows[2]), button("Grafieken"))
    async with h.services.sessionmaker() as session:
        media = await session.scalar(select(func.count()).select_from(OutboxMedia))
    assert media == 2 * (QUESTIONS + 1)  # seven photos and their album row, per language
    griet = h.client(user_id=3, language="en", dp=dp)
    griet.last_update_id = 300_000
    await griet.click(as_seen(rows[3]), button("🌐 Français"))  # the summary, now in French
    [edit] = [c for c in h.bot.calls if isinstance(c, EditMessageText)]
    await griet.click(as_seen_edit(edit, rows[3]), button("Graphiques"))
    async with h.services.sessionmaker() as session:
        again = await session.scalar(select(func.count()).select_from(OutboxMedia))
    assert again == media  # the French photos and album rows, reused
    albums = await deliveries(h, CHARTS_TOPIC)
    assert [(a.chat_id, a.media_id) for a in albums] == [
        (1, album.media_id),
        (2, albums[1].media_id),
        (3, album.media_id),
    ]

    # The outbox sends each album once; the French one is uploaded once, then by file_id.
    bot = ScriptedBot()

    async def done() -> bool:
        return all(r.status == "sent" for r in await deliveries(h, CHARTS_TOPIC))

    await run_outbox(h.services.sessionmaker, bot, done)
    sent = [chat for chat, text in bot.sent if text.startswith("[album")]
    assert sorted(sent) == [1] * QUESTIONS + [2] * QUESTIONS + [3] * QUESTIONS
    assert bot.uploads == 2 * QUESTIONS  # French and Dutch, each once


def as_seen_edit(edit: EditMessageText, row: Delivery) -> Message:
    return Message(
        message_id=row.id,
        date=NOW,
        chat=Chat(id=row.chat_id, type="private"),
        text=edit.text,
        reply_markup=edit.reply_markup,
    )


async def test_the_language_button_shows_the_summary_in_that_language(make: Any) -> None:
    h = await make()
    await run_due(h.app, h.services)
    rows = {r.chat_id: r for r in await deliveries(h, "results:results")}
    amelie = h.client(user_id=1)
    await amelie.click(as_seen(rows[1]), button("🌐 Nederlands"))
    [edit] = [c for c in h.bot.calls if isinstance(c, EditMessageText)]
    c = h.app.consultation
    assert edit.message_id == rows[1].id
    assert c.text(c.question("strategy_axes").text, "nl") in edit.text
    assert "10 deelnemers" in edit.text
    markup = edit.reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    assert [[b.text for b in line] for line in markup.inline_keyboard] == [
        ["📊 Grafieken"],
        ["🌐 Français", "🌐 English"],
    ]
    # Its 📊 now asks for the Dutch album.
    await amelie.click(as_seen_edit(edit, rows[1]), button("Grafieken"))
    [album] = await deliveries(h, CHARTS_TOPIC)
    assert album.dedupe_key.split(":")[3] == "nl" and album.chat_id == 1


async def test_stale_or_forged_buttons_are_answered_politely(make: Any) -> None:
    h = await make()
    await run_due(h.app, h.services)
    rows = {r.chat_id: r for r in await deliveries(h, "results:results")}
    dp = h.dispatcher()
    amelie = h.client(user_id=1, dp=dp)
    forged = as_seen(rows[1])
    markup = forged.reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    markup.inline_keyboard[0][0].callback_data = ResultsButton(action="c", lang="de", v="x").pack()
    markup.inline_keyboard[1][0].callback_data = ResultsButton(action="z", lang="fr", v="x").pack()
    await amelie.click(forged, button("Graphiques"))
    assert h.bot.alerts()[-1] == t("Ce bouton n’est plus valable.", "fr")
    await amelie.click(forged, button("🌐 Nederlands"))
    assert h.bot.alerts()[-1] == t("Ce bouton n’est plus valable.", "fr")
    # Someone the bot knows nothing about (erased, or never invited): told how to get in.
    stranger = h.client(user_id=555, dp=dp)
    stranger.last_update_id = 555_000
    await stranger.click(as_seen(rows[1]), button("Graphiques"))
    assert h.bot.alerts()[-1].startswith("Cette consultation est réservée aux personnes invitées")
    # Before the results phase (a clock moved back: a forged press), nothing is queued either.
    h.clock.now = NOW - 10 * H
    await amelie.click(as_seen(rows[1]), button("Graphiques"))
    assert h.bot.alerts()[-1] == t("Les résultats ne sont pas encore publiés.", "fr")
    assert await deliveries(h, CHARTS_TOPIC) == []


async def test_an_audience_that_gets_the_charts_pushed(make: Any) -> None:
    h = await make(push_charts=["official"])
    await run_due(h.app, h.services)
    rows = await deliveries(h, "results:results")
    per_chat: dict[int, list[Delivery]] = {}
    for row in rows:
        per_chat.setdefault(row.chat_id, []).append(row)
    # Ambassadors: one message with its buttons. The official: text, album, summary as before.
    assert [len(per_chat[1]), len(per_chat[2])] == [1, 1]
    official = per_chat[3]
    kinds = ["album" if r.media_id else "text" for r in official]
    assert kinds == ["text", "album", "text"]
    assert [r.weight for r in official] == [1, QUESTIONS, 1]
    assert official[0].dedupe_key.endswith(":intro") and not official[2].reply_markup


def test_push_charts_is_checked() -> None:
    doc = document(push_charts=["moderator"])
    with pytest.raises(ConsultationError) as caught:
        parse_consultation(yaml.safe_dump(doc, allow_unicode=True))
    assert "phases[results].push_charts[0]" in str(caught.value)
    assert "moderator is not in this phase's audience" in str(caught.value)
    doc = document()
    doc["phases"][0]["push_charts"] = ["official"]
    with pytest.raises(ConsultationError) as caught:
        parse_consultation(yaml.safe_dump(doc, allow_unicode=True))
    assert "push_charts is for results phases" in str(caught.value)


@pytest.mark.parametrize(("pushed", "messages"), [([], 3), (["official"], 2 + 1 + QUESTIONS + 1)])
async def test_the_plan_counts_what_telegram_counts(
    make: Any, pushed: list[str], messages: int
) -> None:
    h = await make(push_charts=pushed)
    h.clock.now = NOW - 3 * H  # the survey is over, the results not yet out
    async with h.services.sessionmaker() as session:
        report = await status_report(session, h.app, TR, "fr")
    plan = TR.ngettext(
        "Diffusion des résultats prévue : {n} destinataire, dont {pushed} avec les "
        "graphiques envoyés d’office (les autres les demandent avec 📊).",
        "Diffusion des résultats prévue : {n} destinataires, dont {pushed} avec les "
        "graphiques envoyés d’office (les autres les demandent avec 📊).",
        3,
    ).format(n=3, pushed=len(pushed))
    assert plan in report
    assert f"{messages} messages à envoyer, au sens de Telegram" in report
    # What the broadcast then queues weighs just that.
    h.clock.now = NOW
    await run_due(h.app, h.services)
    assert sum(r.weight for r in await deliveries(h, "results:results")) == messages
    async with h.services.sessionmaker() as session:
        after = await status_report(session, h.app, TR, "fr")
    assert "Diffusion des résultats prévue" not in after
