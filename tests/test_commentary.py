"""The results commentary: reviewed by the organisers when the survey closes, with the real
counts in front of them; approved (✅) or edited (✏️, language by language) in Telegram;
until approved the results go out without it, then it follows the data. Stale, forged and
strangers' buttons change nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiogram.methods import EditMessageText
from aiogram.types import Chat, InlineKeyboardMarkup, Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.consultation import Role, load_consultation
from bot.context import AppContext
from bot.i18n import Translator
from bot.phases.transitions import run_due
from bot.services import AppServices
from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.dialog_state.sql_storage import SQLStorage
from storage.models import AuditEntry, Delivery
from storage.repositories.commentary import CommentaryRepository
from storage.repositories.members import MemberRepository
from tests.support import answer_survey, default_document, seed_answers, with_dates, write_document
from tests.test_dialogs import Clock, Harness, button

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RESULTS_OPEN = NOW + timedelta(days=1)
ADMIN, OTHER_ADMIN = 1, 2
# Ambassadors in each language; the first ten submit the seed's answers.
AMBASSADORS = {100 + i: ("fr", "nl", "en")[i % 3] for i in range(10)}
TR = Translator()


def t(msgid: str, lang: str = "fr") -> str:
    return TR.gettext(msgid, locale=lang)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    """The survey closed an hour ago (its answers in), the results open tomorrow."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'commentary.db'}"
    await upgrade_async(url)
    dates = {
        "survey": (NOW - timedelta(days=10), NOW - timedelta(hours=1)),
        "results": (RESULTS_OPEN, RESULTS_OPEN + timedelta(days=2)),
        "ideas": (NOW + timedelta(days=4), NOW + timedelta(days=300)),
    }
    path = write_document(tmp_path / "c.yaml", with_dates(default_document(), dates))
    engine = make_engine(url)
    sessionmaker: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
    clock = Clock(NOW)
    app = AppContext(
        settings=Settings(
            bot_token=None,
            database_url=url,
            admin_ids=frozenset({ADMIN, OTHER_ADMIN}),
            throttle_burst=10_000,
            callback_answer_deadline=60,
        ),
        consultation=load_consultation(path),
        clock=clock,
    )
    # Charts are not the subject here: bytes stand for them (matplotlib takes seconds).
    services = AppServices.create(sessionmaker)
    services.charts.render = lambda results, c, lang, tr: [
        f"{lang}:{qr.question.id}".encode() for qr in results.questions
    ]
    harness = Harness(app, services, SQLStorage(sessionmaker), clock)
    async with sessionmaker() as session:
        members = MemberRepository(session)
        await members.get_or_create(ADMIN, "Olga")  # she wrote to the bot; OTHER_ADMIN never did
        for member_id, lang in AMBASSADORS.items():
            member, _ = await members.get_or_create(member_id, f"Amb{member_id}")
            await members.set_language(member, lang)
            await members.add_role(member, Role.AMBASSADOR)
        await session.commit()
        for member_id, answers in zip(AMBASSADORS, seed_answers(), strict=True):
            await answer_survey(
                session, harness.app.consultation, member_id, answers, NOW - timedelta(days=2)
            )
    yield harness
    await engine.dispose()


async def deliveries(h: Harness, topic: str = "") -> list[Delivery]:
    async with h.services.sessionmaker() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.topic.startswith(topic)).order_by(Delivery.id)
        )
        return list(rows.all())


async def commentary(h: Harness):  # type: ignore[no-untyped-def]
    async with h.services.sessionmaker() as session:
        return await CommentaryRepository(session).get(h.app.consultation.id, "results")


async def audit(h: Harness) -> list[tuple[str, int | None, str | None]]:
    async with h.services.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.action.startswith("commentary"))
        )
        return [(e.action, e.actor_id, e.target_id) for e in rows.all()]


def card_message(row: Delivery, chat_id: int = ADMIN) -> Message:
    """The card as the organiser's chat shows it, buttons included."""
    return Message(
        message_id=500 + row.id,
        date=NOW,
        chat=Chat(id=chat_id, type="private"),
        text=row.text,
        reply_markup=InlineKeyboardMarkup.model_validate(json.loads(row.reply_markup or "{}")),
    )


async def review_card(h: Harness, admin: int = ADMIN) -> Delivery:
    cards = [r for r in await deliveries(h, "commentary:") if r.reply_markup and r.chat_id == admin]
    assert len(cards) == 1, cards
    return cards[0]


async def close_survey(h: Harness) -> list[str]:
    return await run_due(h.app, h.services, NOW)


async def open_results(h: Harness) -> list[str]:
    h.clock.now = RESULTS_OPEN + timedelta(minutes=1)
    return await run_due(h.app, h.services, h.clock.now)


# ---------------------------------------------------------------- the review


async def test_when_the_survey_closes_each_organiser_gets_counts_drafts_and_buttons(
    h: Harness,
) -> None:
    done = await close_survey(h)
    assert "survey:close:closed, review to 2" in done
    rows = [r for r in await deliveries(h, "commentary:") if r.chat_id == ADMIN]
    texts = [r.text or "" for r in rows]
    # The counts first (ranked, with the real numbers), then each language's draft, then the card.
    assert texts[0].startswith("📝 <b>Le sondage est clos.</b>")
    assert texts[1].startswith("📊 <b>Résultats\xa0:") and "10 répondants" in texts[1]
    assert "L’approche locale, intégrale et intégrée de prévention et de sécurité — 7" in texts[1]
    drafts = texts[-4:-1]
    assert [d.splitlines()[0] for d in drafts] == [
        "💬 <b>Commentaire en français</b> (version 1)",
        "💬 <b>Commentaire en néerlandais</b> (version 1)",
        "💬 <b>Commentaire en anglais</b> (version 1)",
    ]
    assert "nous vous proposons 4 projets" in drafts[0] and "4 projecten" in drafts[1]
    card = rows[-1]
    assert card.text.startswith("📝 <b>Commentaire des résultats</b> — version 1")
    assert [b.text for b in card_message(card).reply_markup.inline_keyboard[0]] == [
        t("✅ Approuver"),
        t("✏️ Modifier"),
    ]
    record = await commentary(h)
    assert record is not None and record.version == 1 and not record.approved
    assert set(record.texts) == {"fr", "nl", "en"}
    # Run again (another instance, a restart): nothing more.
    before = len(await deliveries(h))
    await close_survey(h)
    assert len(await deliveries(h)) == before


async def test_until_approved_the_results_go_out_without_commentary(h: Harness) -> None:
    await close_survey(h)
    await open_results(h)
    rows = await deliveries(h, "results:")
    assert rows and not any(r.dedupe_key.endswith(":commentary") for r in rows)


async def test_approved_before_the_results_open_it_follows_the_data(h: Harness) -> None:
    await close_survey(h)
    client = h.client(ADMIN)
    await client.click(card_message(await review_card(h)), button(t("✅ Approuver")))
    assert h.bot.alerts()[-1] == t("✅ Commentaire approuvé : il suivra les résultats.")
    record = await commentary(h)
    assert record is not None and record.approved
    assert await audit(h) == [("commentary.approve", ADMIN, "1")]
    # The card now says so, without buttons.
    edit = [c for c in h.bot.calls if isinstance(c, EditMessageText)][-1]
    assert "✅ Approuvé le" in edit.text and edit.reply_markup is None
    await open_results(h)
    for member_id, lang in AMBASSADORS.items():
        mine = [r for r in await deliveries(h, "results:") if r.chat_id == member_id]
        # The summary (the charts on demand, its buttons under the last message): the data
        # first, the commentary last, in the reader's language. Together they pass
        # Telegram's 4096 characters: two messages.
        assert len(mine) == 2 and not any(r.media_id for r in mine)
        assert mine[-1].reply_markup and not mine[0].reply_markup
        heading = t("💬 <b>Le commentaire des organisateurs</b>", lang)
        assert mine[-1].text.startswith(heading) and "1. " in mine[0].text
        assert {"fr": "4 projets", "nl": "4 projecten", "en": "4 projects"}[lang] in mine[-1].text
    # The other organiser's card is stale now: nothing changes, they are told.
    await h.client(OTHER_ADMIN).click(
        card_message(await review_card(h, OTHER_ADMIN), OTHER_ADMIN), button(t("✅ Approuver"))
    )
    assert h.bot.alerts()[-1].startswith("Ce commentaire a déjà été approuvé (le ")
    assert await audit(h) == [("commentary.approve", ADMIN, "1")]


async def test_approved_after_the_broadcast_it_follows_on_its_own_once(h: Harness) -> None:
    await close_survey(h)
    await open_results(h)
    card = card_message(await review_card(h))
    await h.client(ADMIN).click(card, button(t("✅ Approuver")))
    assert (
        h.bot.alerts()[-1]
        == "✅ Commentaire approuvé : il part vers les 10 destinataires des résultats."
    )
    follow = [r for r in await deliveries(h, "results:") if r.dedupe_key.endswith(":commentary")]
    assert sorted(r.chat_id for r in follow) == sorted(AMBASSADORS)
    # A double tap sends nothing more.
    await h.client(ADMIN).click(card, button(t("✅ Approuver")))
    again = [r for r in await deliveries(h, "results:") if r.dedupe_key.endswith(":commentary")]
    assert len(again) == len(follow)


# ---------------------------------------------------------------- editing


async def test_edit_language_by_language_then_approve(h: Harness) -> None:
    await close_survey(h)
    client = h.client(ADMIN)
    old_card = card_message(await review_card(h))
    await client.click(old_card, button(t("✏️ Modifier")))
    window = h.last().text or ""
    assert window.startswith("✏️ <b>Commentaire en français</b> (1/3)")
    assert "nous vous proposons 4 projets" in window  # the current text, to start from
    await client.send("Les résultats montrent <b>une priorité nette</b> : l’inclusion.")
    assert (h.last().text or "").startswith("✏️ <b>Commentaire en néerlandais</b> (2/3)")
    await h.click(client, "Garder ce texte")
    assert (h.last().text or "").startswith("✏️ <b>Commentaire en anglais</b> (3/3)")
    await client.send("The results show a clear priority: inclusion.")
    record = await commentary(h)
    assert record is not None and record.version == 2 and not record.approved
    assert record.texts["fr"].startswith("Les résultats montrent")
    assert record.texts["en"] == "The results show a clear priority: inclusion."
    assert "4 projecten" in record.texts["nl"]  # kept
    assert await audit(h) == [("commentary.edit", ADMIN, "2")]
    # The new review: each draft, then a card flagging the Dutch kept from version 1.
    sent = h.bot.texts()
    card = sent[-1]
    assert card.startswith("📝 <b>Commentaire des résultats</b> — version 2")
    assert (
        "⚠️ Néerlandais\xa0: inchangé depuis la dernière modification du texte en français" in card
    )
    assert "⚠️ Anglais" not in card
    # The old card's button is stale: nothing approved, the latest version sent again.
    await client.click(old_card, button(t("✅ Approuver")))
    assert h.bot.alerts()[-1] == t(
        "Le commentaire a été modifié depuis : voici sa dernière version."
    )
    assert not (await commentary(h)).approved
    assert h.bot.texts()[-1].startswith("📝 <b>Commentaire des résultats</b> — version 2")
    # Approving version 2 (from the card the organiser just received).
    from bot.results.commentary_cards import CommentaryAction

    fresh = Message(
        message_id=900,
        date=NOW,
        chat=Chat(id=ADMIN, type="private"),
        text="card",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[
                [{"text": "ok", "callback_data": CommentaryAction(action="ok", version=2).pack()}]
            ]
        ),
    )
    await client.click(fresh, button("ok"))
    record = await commentary(h)
    assert record is not None and record.approved and record.version == 2
    await open_results(h)
    nl = [r for r in await deliveries(h, "results:") if AMBASSADORS.get(r.chat_id) == "nl"]
    assert "4 projecten" in nl[-1].text  # the Dutch kept, as approved
    fr = [r for r in await deliveries(h, "results:") if AMBASSADORS.get(r.chat_id) == "fr"]
    # Typed tags stay text (formatting travels as Telegram's entities); French spacing applied.
    assert "&lt;b&gt;une priorité nette&lt;/b&gt;\xa0: l’inclusion" in fr[-1].text


async def test_a_text_too_long_or_not_a_text_is_refused_politely(h: Harness) -> None:
    await close_survey(h)
    client = h.client(ADMIN)
    await client.click(card_message(await review_card(h)), button(t("✏️ Modifier")))
    await client.send("x" * 3600)
    assert h.bot.texts()[-1] == t(
        "Ce texte est trop long ({n} caractères, au plus {max}) : raccourcissez-le, "
        "s’il vous plaît."
    ).format(n=3600, max=3500)
    assert (h.last().text or "").startswith("✏️ <b>Commentaire en français</b> (1/3)")
    await h.click(client, "Annuler")
    record = await commentary(h)
    assert record is not None and record.version == 1


# ---------------------------------------------------------------- who may press


async def test_only_organisers_may_approve_or_edit(h: Harness) -> None:
    await close_survey(h)
    card = await review_card(h)
    stranger = h.client(101, "nl")  # an ambassador who got hold of the buttons
    for label in (t("✅ Approuver"), t("✏️ Modifier")):
        await stranger.click(card_message(card, 101), button(label))
        assert h.bot.alerts()[-1] == t(
            "Seuls les organisateurs peuvent approuver ou modifier le commentaire.", "nl"
        )
    record = await commentary(h)
    assert record is not None and record.version == 1 and not record.approved
    assert await audit(h) == []


async def test_forged_and_early_buttons_change_nothing(h: Harness) -> None:
    client = h.client(ADMIN)

    def forged(data: str) -> Message:
        markup = {"inline_keyboard": [[{"text": "x", "callback_data": data}]]}
        chat = Chat(id=ADMIN, type="private")
        return Message(message_id=77, date=NOW, chat=chat, text="x", reply_markup=markup)

    # Before the survey closed there is nothing to approve.
    await client.click(forged("rc:ok:1"), button("x"))
    assert h.bot.alerts()[-1] == t(
        "Pas de commentaire à relire pour l’instant : il le sera à la clôture du sondage."
    )
    await close_survey(h)
    await client.click(forged("rc:ok:7"), button("x"))  # a version that never was
    assert h.bot.alerts()[-1] == t(
        "Le commentaire a été modifié depuis : voici sa dernière version."
    )
    await client.click(forged("rc:zap:1"), button("x"))
    assert h.bot.alerts()[-1] == t("Ce bouton n’est plus valable.")
    await client.click(forged("rc:ok:notanumber"), button("x"))  # does not even parse
    record = await commentary(h)
    assert record is not None and record.version == 1 and not record.approved


# ---------------------------------------------------------------- /results


async def test_results_command_shows_the_approved_commentary_after_the_data(h: Harness) -> None:
    await close_survey(h)
    h.services.charts.render = lambda *_: []  # the test bot sends no albums
    admin = h.client(ADMIN)
    # An organiser's /results while the commentary waits: the data, then its review.
    await admin.send("/results")
    # (then the button of the council's report, last)
    assert h.bot.texts()[-2].startswith("📝 <b>Commentaire des résultats</b> — version 1")
    await admin.click(card_message(await review_card(h)), button(t("✅ Approuver")))
    h.clock.now = RESULTS_OPEN + timedelta(hours=1)
    member = h.client(102, "en")
    await member.send("/results")
    texts = h.bot.texts()
    summary = next(i for i, x in enumerate(texts) if x.startswith("📊 <b>Results:"))
    assert texts[-1].startswith("💬 <b>The organisers’ commentary</b>") and summary < len(texts) - 1


async def test_repository_updates_are_conditional_on_the_version(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """On SQLite and PostgreSQL: one draft, each change on the version seen, approval final."""
    async with sessionmaker() as session:
        repo = CommentaryRepository(session)
        assert await repo.create("c", "results", {"fr": "a", "nl": "b"}, NOW)
        assert not await repo.create("c", "results", {"fr": "z"}, NOW)
        assert await repo.revise("c", "results", 1, {"fr": "a2"}, NOW) == 2
        assert await repo.revise("c", "results", 1, {"fr": "late"}, NOW) is None
        assert not await repo.approve("c", "results", 1, NOW)
        assert await repo.approve("c", "results", 2, NOW)
        assert await repo.revise("c", "results", 2, {"fr": "after"}, NOW) is None
        await session.commit()
        record = await repo.get("c", "results", lock=True)
    assert record is not None and record.approved and record.version == 2
    assert record.texts == {"fr": "a2", "nl": "b"} and record.written == {"fr": 2, "nl": 1}
