"""The ideas phase: dialogs clicked by button text (aiogram_dialog.test_tools), and the use cases
behind them — moderation decisions, grouped notifications, the officials' digest."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiogram.types import Message, PhotoSize, Sticker, Update, User
from aiogram_dialog.api.entities import stack as aiogd_stack
from aiogram_dialog.test_tools import BotClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.consultation import Role, load_consultation
from bot.context import AppContext
from bot.i18n import Translator
from bot.ideas.cards import REASONS
from bot.ideas.rules import Decision, idea_link
from bot.phases.transitions import run_due
from bot.services import AppServices
from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.dialog_state.sql_storage import SQLStorage
from storage.models import Comment, Delivery, Idea, NotificationState, Support
from storage.repositories.ideas import IdeaRepository
from storage.repositories.members import MemberRepository
from tests.support import default_document, with_dates, write_document
from tests.test_dialogs import Clock, Harness, Wired, button

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
IDEAS_START = NOW - timedelta(days=2)
IDEAS_END = NOW + timedelta(days=30)
MOD_CHAT = -100123
CLOSED = (
    "La phase des idées est close : les idées restent lisibles, mais on ne peut plus "
    "en proposer, les soutenir ni les commenter."
)
TR = Translator()


def t(msgid: str, lang: str = "fr") -> str:
    return TR.gettext(msgid, locale=lang)


def ideas_dates(
    starts: datetime = IDEAS_START, ends: datetime = IDEAS_END
) -> dict[str, tuple[datetime, datetime]]:
    """Survey and results long over; the ideas phase from `starts` to `ends`."""
    return {
        "survey": (starts - timedelta(days=40), starts - timedelta(days=30)),
        "results": (starts - timedelta(days=29), starts - timedelta(days=20)),
        "ideas": (starts, ends),
    }


def make_app(
    tmp_path: Path,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    dates: dict[str, tuple[datetime, datetime]] | None = None,
    **document: Any,
) -> Wired:
    doc = with_dates(default_document(), dates or ideas_dates())
    for phase in doc["phases"]:
        if phase["id"] == "ideas":
            phase.update(document)
    path = write_document(tmp_path / "ideas.yaml", doc)
    app = AppContext(
        settings=Settings(
            bot_token=None,
            # The database the sessions use (the export worker opens it by its URL).
            database_url=sessionmaker.kw["bind"].url.render_as_string(hide_password=False),
            admin_ids=frozenset({1}),
            moderation_chat_id=MOD_CHAT,
            throttle_burst=10_000,
            callback_answer_deadline=60,
        ),
        consultation=load_consultation(path),
        clock=clock,
        bot_username="consultbot_test_bot",
    )
    return Wired(app, AppServices.create(sessionmaker))


# ----------------------------------------------------------------- fixtures and helpers


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ideas.db'}"
    await upgrade_async(url)
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    clock = Clock(NOW)
    w = make_app(tmp_path, sessionmaker, clock)
    yield Harness(w.app, w.services, SQLStorage(sessionmaker), clock)
    await engine.dispose()


def member_client(
    h: Harness, dp: Any, user_id: int, name: str = "Anne", lang: str = "fr"
) -> BotClient:
    client = h.client(user_id=user_id, language=lang, dp=dp)
    client.user = User(id=user_id, is_bot=False, first_name=name, language_code=lang)
    # Distinct update ids across clients (aiogram caches Update.event_type per update_id).
    client.last_update_id = user_id * 100_000
    return client


async def add_member(
    sessionmaker: async_sessionmaker[AsyncSession],
    member_id: int,
    name: str,
    lang: str = "fr",
    role: str = Role.AMBASSADOR,
) -> None:
    async with sessionmaker() as session:
        repo = MemberRepository(session)
        member, _ = await repo.get_or_create(member_id, name)
        await repo.set_language(member, lang)
        await repo.add_role(member, role)
        await session.commit()


async def seed_idea(
    w: Wired,
    author_id: int,
    title: str,
    text: str = "Un texte.",
    project: str = "inclusion",
    status: str = "approved",
    at: datetime | None = None,
) -> int:
    """An idea written straight into the database (the author must exist)."""
    now = at or w.app.clock()
    async with w.services.sessionmaker() as session:
        repo = IdeaRepository(session)
        idea = await repo.create(
            w.app.consultation.id, project, author_id, f"m{author_id}", title, text, now
        )
        if status != "pending":
            await repo.decide(idea.id, status, 1, "Modo", None, now)
        await session.commit()
        return idea.id


async def idea_row(w: Wired, idea_id: int) -> Idea:
    async with w.services.sessionmaker() as session:
        idea = await session.get(Idea, idea_id)
        assert idea is not None
        return idea


async def rows(w: Wired, model: Any, *where: Any) -> list[Any]:
    async with w.services.sessionmaker() as session:
        return list((await session.scalars(select(model).where(*where))).all())


async def deliveries(
    sessionmaker: async_sessionmaker[AsyncSession], topic: str, chat_id: int | None = None
) -> list[Delivery]:
    async with sessionmaker() as session:
        query = select(Delivery).where(Delivery.topic == topic).order_by(Delivery.id)
        if chat_id is not None:
            query = query.where(Delivery.chat_id == chat_id)
        return list((await session.scalars(query)).all())


def markup_texts(message: Message) -> list[str]:
    markup = message.reply_markup
    return [b.text for row in markup.inline_keyboard for b in row] if markup else []


async def send_other(client: BotClient, **content: Any) -> None:
    """A non-text message (sticker, photo...) from the client, as Telegram delivers it."""
    message = Message(
        message_id=client._new_message_id(),
        date=NOW,
        chat=client.chat,
        from_user=client.user,
        **content,
    )
    await client.dp.feed_update(
        client.bot, Update(update_id=client._new_update_id(), message=message)
    )


STICKER = Sticker(
    file_id="CAACAgIAAxkB000001",
    file_unique_id="AQAD000001",
    type="regular",
    width=512,
    height=512,
    is_animated=False,
    is_video=False,
    emoji="👍",
)
PHOTO = [PhotoSize(file_id="AgACAgIAAxkB000002", file_unique_id="AQAD000002", width=90, height=90)]


async def open_ideas(h: Harness, client: BotClient) -> None:
    await client.send("/start")
    await h.click(client, "Idées")
    assert "Choisissez un projet" in (h.last().text or "")


async def start_submission(h: Harness, client: BotClient) -> None:
    await open_ideas(h, client)
    await h.click(client, "Proposer une idée")
    assert "Pour quel projet ?" in (h.last().text or "")
    await h.click(client, "L’inclusion")
    assert "Donnez un titre court" in (h.last().text or "")


# ------------------------------------------------------------------------- submitting


async def test_submit_happy_path_with_limits_and_non_text_input(h: Harness) -> None:
    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await start_submission(h, anne)

    # Too long: a clear message, the flow waits on the same step.
    await anne.send("x" * 101)
    assert h.bot.texts()[-1] == t(
        "C’est trop long : {n} caractères pour {max} au plus. Raccourcissez et envoyez à nouveau "
        "(votre brouillon est gardé)."
    ).format(n=101, max=100)
    # Empty (only spaces) and a sticker: polite messages, still the title step.
    await anne.send("   ")
    assert h.bot.texts()[-1] == t("Ce message est vide : écrivez du texte, s’il vous plaît.")
    await send_other(anne, sticker=STICKER)
    assert h.bot.texts()[-1] == t(
        "Seul du texte est accepté ici : écrivez votre idée avec des mots."
    )
    # A valid title moves on: the flow continues after the refusals.
    await anne.send("  Des bancs dans le parc  ")
    assert "Décrivez maintenant votre idée" in (h.last().text or "")

    await send_other(anne, photo=PHOTO, caption="voilà")
    assert h.bot.texts()[-1] == t(
        "Seul du texte est accepté ici : écrivez votre idée avec des mots."
    )
    await anne.send("y" * 2001)
    assert "2001" in h.bot.texts()[-1] and "2000" in h.bot.texts()[-1]
    await anne.send("Pour que les aînés puissent se reposer en se promenant.")
    preview = h.last().text or ""
    assert "Aperçu" in preview and "L’inclusion" in preview
    # The draft was kept through every refusal (title stripped).
    assert "<b>Des bancs dans le parc</b>" in preview
    assert "se reposer en se promenant" in preview
    assert "Des idées proches" not in preview

    # Editing the title from the preview comes back to the preview, text kept.
    await h.click(anne, "Modifier le titre")
    await anne.send("x" * 150)
    assert "150" in h.bot.texts()[-1]
    await anne.send("Des bancs dans les parcs")
    preview = h.last().text or ""
    assert "<b>Des bancs dans les parcs</b>" in preview
    assert "se reposer en se promenant" in preview

    await h.click(anne, "Envoyer aux modérateurs")
    [idea] = await rows(h, Idea)
    assert h.bot.alerts()[-1] == t(
        "Merci ! Votre idée n° {id} est en attente de modération. Vous serez prévenu de la "
        "décision."
    ).format(id=idea.id)
    assert (idea.status, idea.author_id, idea.project_id) == ("pending", 7, "inclusion")
    assert idea.title == "Des bancs dans les parcs"
    assert idea.text == "Pour que les aînés puissent se reposer en se promenant."
    assert idea.author_name == "Anne"
    # One moderation card, through the outbox, for the moderation group, with the two buttons.
    [card] = await deliveries(h.services.sessionmaker, "moderation")
    assert card.chat_id == MOD_CHAT and card.is_group and card.status == "pending"
    assert f"Nouvelle idée n° {idea.id}" in (card.text or "")
    assert "Des bancs dans les parcs" in (card.text or "") and "Par Anne" in (card.text or "")
    buttons = [
        b["text"] for row in json.loads(card.reply_markup or "{}")["inline_keyboard"] for b in row
    ]
    assert buttons == ["✅ Approuver", "❌ Rejeter"]


async def test_similar_ideas_offered_and_support_instead(h: Harness) -> None:
    await add_member(h.services.sessionmaker, 50, "Bob")
    similar = [
        "Ouvrir les écoles de devoirs le samedi",
        "Ouvrir les écoles de devoirs le dimanche",
        "Ouvrir les écoles de devoirs le mercredi",
        "Ouvrir les écoles de devoirs pendant les vacances",
    ]
    ids = [await seed_idea(h, 50, title, "Écoles de devoirs ouvertes.") for title in similar]
    # Same words, but another project, or not approved: never offered.
    other_project = await seed_idea(
        h, 50, "Ouvrir les écoles de devoirs le samedi", project="nuisances"
    )
    pending = await seed_idea(h, 50, "Ouvrir les écoles de devoirs le samedi", status="pending")
    await seed_idea(h, 50, "Planter des arbres en ville", "Des arbres.")

    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await start_submission(h, anne)
    await anne.send("Ouvrir les écoles de devoirs le samedi matin")
    await anne.send("Écoles de devoirs ouvertes le samedi matin.")
    preview = h.last()
    assert "Des idées proches existent déjà" in (preview.text or "")
    offered = [b for b in markup_texts(preview) if b.startswith("👍 ")]
    assert len(offered) == 3  # at most three
    assert "👍 Ouvrir les écoles de devoirs le samedi" in offered
    assert "👍 Planter des arbres en ville" not in offered
    datas = [b.callback_data for row in preview.reply_markup.inline_keyboard for b in row]  # type: ignore[union-attr]
    assert not any(d and d.endswith(f":{other_project}") for d in datas)
    assert not any(d and d.endswith(f":{pending}") for d in datas)

    await anne.click(preview, button("👍 Ouvrir les écoles de devoirs le samedi"))
    assert h.bot.alerts()[-1] == t("Merci ! Vous soutenez « {title} ».").format(title=similar[0])
    assert (await idea_row(h, ids[0])).supports == 1
    assert [s.member_id for s in await rows(h, Support)] == [7]
    # Nothing was submitted instead, and no card went to the moderators.
    assert await rows(h, Idea, Idea.author_id == 7) == []
    assert await deliveries(h.services.sessionmaker, "moderation") == []


async def test_dialogs_started_within_one_second_keep_their_own_contexts(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiogram-dialog's own intent id is the second plus one draw in a hundred. Here every
    dialog is started in the same second with the same draw: the menu, the ideas and the
    submission then shared one context key, and confirming (which closes the submission)
    deleted the context of the ideas dialog under it: UnknownIntent, the stale-button alert
    and a fresh menu instead of the thanks and the ideas screen."""
    monkeypatch.setattr(aiogd_stack, "time", SimpleNamespace(time=lambda: 1_796_400_000.0))
    monkeypatch.setattr(aiogd_stack, "random", SimpleNamespace(randint=lambda _a, _b: 42))
    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await start_submission(h, anne)
    await anne.send("Des bancs dans le parc")
    await anne.send("Pour que les aînés puissent se reposer.")
    assert "Aperçu" in (h.last().text or "")
    await h.click(anne, "Envoyer aux modérateurs")
    [idea] = await rows(h, Idea)
    thanks = t(
        "Merci ! Votre idée n° {id} est en attente de modération. Vous serez prévenu de la "
        "décision."
    ).format(id=idea.id)
    assert h.bot.alerts() == [thanks]
    # Back on the ideas screen the submission was started from.
    assert "Choisissez un projet" in (h.last().text or "")
    await h.click(anne, "Menu")
    assert "Phase en cours" in (h.last().text or "")
    assert h.bot.alerts() == [thanks]


# --------------------------------------------------------------------------- my ideas


async def test_my_ideas_lists_pending_and_withdraw_once(h: Harness) -> None:
    await add_member(h.services.sessionmaker, 7, "Anne")
    mine = await seed_idea(h, 7, "Une idée en attente", status="pending")
    await seed_idea(h, 7, "Une idée approuvée", status="approved")
    rejected = await seed_idea(h, 7, "Une idée rejetée", status="pending")
    async with h.services.sessionmaker() as session:
        await IdeaRepository(session).decide(rejected, "rejected", 1, "Modo", "duplicate", NOW)
        await session.commit()

    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await open_ideas(h, anne)
    await h.click(anne, "Mes idées")
    listing = markup_texts(h.last())
    assert "⏳ Une idée en attente" in listing
    assert "✅ Une idée approuvée" in listing
    assert "❌ Une idée rejetée" in listing

    await h.click(anne, "❌ Une idée rejetée")
    assert "Raison : Doublon" in (h.last().text or "")
    assert "Retirer cette idée" not in str(h.last().reply_markup)
    await h.click(anne, "Mes idées")

    await h.click(anne, "⏳ Une idée en attente")
    detail = h.last()
    assert "Statut : ⏳ en attente de modération" in (detail.text or "")
    await h.click(anne, "Retirer cette idée")
    assert h.bot.alerts()[-1] == "Idée retirée."
    assert (await idea_row(h, mine)).status == "withdrawn"
    # The screen now says so, without the button...
    assert "Statut : ↩️ retirée" in (h.last().text or "")
    assert "Retirer cette idée" not in str(h.last().reply_markup)
    # ...and a second press (on the old screen) is refused: nothing changes.
    await anne.click(detail, button("Retirer cette idée"))
    assert h.bot.alerts()[-1] == (
        "Cette idée n’est plus en attente : elle ne peut plus être retirée."
    )
    assert (await idea_row(h, mine)).status == "withdrawn"


async def test_someone_else_cannot_withdraw_or_read_a_pending_idea(h: Harness) -> None:
    await add_member(h.services.sessionmaker, 7, "Anne")
    pending = await seed_idea(h, 7, "Secret encore", status="pending")
    dp = h.dispatcher()
    bob = member_client(h, dp, 8, "Bob")
    await bob.send(f"/start idea_{pending}")
    assert "Cette idée n’est pas (ou plus) disponible." in (h.last().text or "")
    assert "Secret encore" not in (h.last().text or "")
    assert (await idea_row(h, pending)).status == "pending"


# ----------------------------------------------------------------------------- browse


async def test_browse_sort_and_paginate(h: Harness) -> None:
    await add_member(h.services.sessionmaker, 50, "Bob")
    for i in range(7):
        idea_id = await seed_idea(h, 50, f"Idée numéro {i}", at=NOW - timedelta(hours=10 - i))
        async with h.services.sessionmaker() as session:
            await session.execute(
                update(Idea).where(Idea.id == idea_id).values(supports=(i * 3) % 7)
            )
            await session.commit()
    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await open_ideas(h, anne)
    await h.click(anne, "L’inclusion")
    page = h.last()
    assert "7 idées approuvées" in (page.text or "")
    assert "Les plus récentes d’abord." in (page.text or "")
    ideas = [b for b in markup_texts(page) if b.startswith("💡")]
    assert ideas == [f"💡 Idée numéro {i} · 👍 {(i * 3) % 7}" for i in (6, 5, 4, 3, 2)]
    await h.click(anne, "▶️")
    assert [b for b in markup_texts(h.last()) if b.startswith("💡")] == [
        "💡 Idée numéro 1 · 👍 3",
        "💡 Idée numéro 0 · 👍 0",
    ]
    await h.click(anne, "Les plus soutenues")
    top = [b for b in markup_texts(h.last()) if b.startswith("💡")]
    supports = [int(b.rsplit(" ", 1)[1]) for b in top]
    assert supports == sorted(supports, reverse=True) == [6, 5, 4, 3, 2]
    assert "Les plus soutenues d’abord." in (h.last().text or "")


async def test_support_toggles_comment_reply_and_report(h: Harness) -> None:
    await add_member(h.services.sessionmaker, 50, "Bob", lang="nl")
    idea_id = await seed_idea(h, 50, "Un potager partagé", "Au pied des immeubles.")
    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await open_ideas(h, anne)
    await h.click(anne, "L’inclusion")
    await h.click(anne, "💡 Un potager partagé · 👍 0")
    screen = h.last()
    assert "Un potager partagé" in (screen.text or "") and "Au pied des immeubles." in (
        screen.text or ""
    )
    assert idea_link(h.app, idea_id) in (screen.text or "")

    async def supports() -> tuple[int, int]:
        idea = await idea_row(h, idea_id)
        return idea.supports, len(await rows(h, Support, Support.idea_id == idea_id))

    assert await supports() == (0, 0)
    await h.click(anne, "Soutenir")
    assert h.bot.alerts()[-1] == "Merci pour votre soutien !"
    assert await supports() == (1, 1)
    assert "Retirer mon soutien" in str(h.last().reply_markup)
    # One support per member: the old screen's button again changes nothing.
    await anne.click(screen, button("Soutenir"))
    assert h.bot.alerts()[-1] == "Vous soutenez déjà cette idée."
    assert await supports() == (1, 1)
    await h.click(anne, "Retirer mon soutien")
    assert h.bot.alerts()[-1] == "Soutien retiré."
    assert await supports() == (0, 0)
    assert "Soutenir" in str(h.last().reply_markup)

    # Comment: empty refused, then stored and shown at once.
    await h.click(anne, "Commenter")
    assert "Écrivez votre commentaire (1000 caractères au plus)" in (h.last().text or "")
    await send_other(anne, sticker=STICKER)
    assert h.bot.texts()[-1] == "Envoyez du texte, s’il vous plaît."
    await anne.send("c" * 1001)
    assert "1001" in h.bot.texts()[-1]
    await anne.send("Bonne idée, je peux aider.")
    assert h.bot.texts()[-1] == "💬 Commentaire publié."
    assert "1. <b>Anne</b> : Bonne idée, je peux aider." in (h.last().text or "")
    [first] = await rows(h, Comment)
    assert (first.idea_id, first.parent_id, first.author_id) == (idea_id, None, 7)

    # Reply to it (one level).
    await h.click(anne, "Répondre")
    assert markup_texts(h.last())[:-1] == ["↩️ 1. Anne"]
    await h.click(anne, "↩️ 1. Anne")
    assert "Écrivez votre réponse à Anne" in (h.last().text or "")
    await anne.send("Le samedi matin, par exemple.")
    reply = (await rows(h, Comment, Comment.parent_id.is_not(None)))[0]
    assert (reply.parent_id, reply.text) == (first.id, "Le samedi matin, par exemple.")
    text = h.last().text or ""
    assert "    ↩️ 2. <b>Anne</b> : Le samedi matin, par exemple." in text
    # A reply cannot be answered: only top-level comments are offered.
    await h.click(anne, "Répondre")
    assert markup_texts(h.last())[:-1] == ["↩️ 1. Anne"]
    await h.click(anne, "Annuler")

    # The first comment went to the moderators at once, with a Hide button; the reply, written
    # within a minute, waits for the next batched card. The author was told (grouped).
    cards = await deliveries(h.services.sessionmaker, "moderation", MOD_CHAT)
    assert len(cards) == 1
    assert "Bonne idée, je peux aider." in (cards[0].text or "")
    h.clock.now = NOW + timedelta(seconds=h.app.settings.comment_cards_every)
    async with h.services.sessionmaker() as session:
        assert await h.use(session).ideas.card_comments() == 1
    cards = await deliveries(h.services.sessionmaker, "moderation", MOD_CHAT)
    assert len(cards) == 2
    assert all("🙈 Masquer" in (c.reply_markup or "") for c in cards)
    assert "Le samedi matin, par exemple." in (cards[1].text or "")
    [note] = await deliveries(h.services.sessionmaker, "notification", 50)
    assert "Un potager partagé" in (note.text or "")

    # Report the idea: once.
    await h.click(anne, "Signaler")
    await h.click(anne, "L’idée elle-même")
    assert h.bot.alerts()[-1] == "Merci : les modérateurs vont examiner ce signalement."
    await h.click(anne, "Signaler")
    await h.click(anne, "L’idée elle-même")
    assert h.bot.alerts()[-1] == "Vous l’avez déjà signalé : merci."
    # Report a comment: its card says so, with the Hide button.
    await h.click(anne, "Signaler")
    assert markup_texts(h.last())[1:-1] == ["💬 1. Anne", "💬 2. Anne"]
    await h.click(anne, "💬 2. Anne")
    assert h.bot.alerts()[-1] == "Merci : les modérateurs vont examiner ce signalement."
    reports = await deliveries(h.services.sessionmaker, "moderation", MOD_CHAT)
    assert len(reports) == 4
    assert "Idée signalée" in (reports[2].text or "") and "Un potager partagé" in (
        reports[2].text or ""
    )
    assert "Commentaire signalé" in (reports[3].text or "")
    assert "Le samedi matin, par exemple." in (reports[3].text or "")
    assert "🙈 Masquer" in (reports[3].reply_markup or "")


async def test_comments_are_paginated(h: Harness) -> None:
    await add_member(h.services.sessionmaker, 50, "Bob")
    idea_id = await seed_idea(h, 50, "Beaucoup de commentaires")
    async with h.services.sessionmaker() as session:
        repo = IdeaRepository(session)
        for i in range(7):
            await repo.add_comment(idea_id, 50, "Bob", f"commentaire {i + 1}", None, NOW)
        await session.commit()
    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await anne.send(f"/start idea_{idea_id}")
    text = h.last().text or ""
    assert "💬 7 commentaires" in text and "(1 / 2)" in text
    assert "5. <b>Bob</b> : commentaire 5" in text and "commentaire 6" not in text
    await h.click(anne, "💬 ▶️")
    text = h.last().text or ""
    assert "6. <b>Bob</b> : commentaire 6" in text and "commentaire 5" not in text
    assert "(2 / 2)" in text


async def test_phase_closed_support_and_comment_refused_idea_readable(h: Harness) -> None:
    await add_member(h.services.sessionmaker, 50, "Bob")
    idea_id = await seed_idea(h, 50, "Un potager partagé", "Au pied des immeubles.")
    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await anne.send(f"/start idea_{idea_id}")
    screen = h.last()
    assert "Un potager partagé" in (screen.text or "")
    await h.click(anne, "Commenter")
    comment_prompt = h.last()

    h.clock.now = IDEAS_END + timedelta(minutes=1)
    # A comment typed before the end and sent after it: refused, clearly.
    await anne.send("Trop tard ?")
    assert CLOSED in h.bot.texts()
    assert await rows(h, Comment) == []
    # The old screen's Support button: refused, nothing stored.
    await anne.click(screen, button("Soutenir"))
    assert h.bot.alerts()[-1] == CLOSED
    assert await rows(h, Support) == []
    assert (await idea_row(h, idea_id)).supports == 0
    await anne.click(comment_prompt, button("Annuler"))

    # Still readable from the menu, without the buttons that would change anything.
    await open_ideas(h, anne)
    assert "Proposer une idée" not in str(h.last().reply_markup)
    await h.click(anne, "L’inclusion")
    assert "Proposer une idée ici" not in str(h.last().reply_markup)
    await h.click(anne, "💡 Un potager partagé · 👍 0")
    text = h.last().text or ""
    assert "Un potager partagé" in text and "Au pied des immeubles." in text
    keyboard = str(h.last().reply_markup)
    assert "Soutenir" not in keyboard and "Commenter" not in keyboard


async def test_phase_closed_while_writing_an_idea(h: Harness) -> None:
    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await start_submission(h, anne)
    await anne.send("Une idée de dernière minute")
    h.clock.now = IDEAS_END + timedelta(seconds=1)
    await anne.send("Le texte arrive trop tard.")
    assert h.bot.texts()[-1] == ("La phase des idées est close : on ne peut plus proposer d’idée.")
    assert await rows(h, Idea) == []
    assert await deliveries(h.services.sessionmaker, "moderation") == []


# ---------------------------------------------------------------- use cases, both databases


def db_app(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession], **document: Any
) -> Wired:
    return make_app(tmp_path, sessionmaker, Clock(NOW), **document)


async def test_decide_first_moderator_wins(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    w = db_app(tmp_path, sessionmaker)
    await add_member(sessionmaker, 7, "Anne", lang="nl")
    await add_member(sessionmaker, 8, "Emma", lang="en")
    first = await seed_idea(w, 7, "Des bancs", status="pending")
    second = await seed_idea(w, 8, "Des arbres", status="pending")

    async with sessionmaker() as session:
        result = await w.use(session).ideas.decide(first, True, 601, "Mia Modo")
    assert result.outcome == Decision.DONE
    assert result.idea is not None and result.idea.status == "approved"
    async with sessionmaker() as session:
        late = await w.use(session).ideas.decide(first, False, 602, "Noé", "duplicate")
    assert late.outcome == Decision.ALREADY
    assert late.idea is not None
    assert (late.idea.status, late.idea.decided_by, late.idea.decided_by_name) == (
        "approved",
        601,
        "Mia Modo",
    )
    async with sessionmaker() as session:
        missing = await w.use(session).ideas.decide(999_999, True, 601, "Mia Modo")
    assert missing.outcome == Decision.MISSING and missing.idea is None

    stored = await idea_row(w, first)
    assert (stored.status, stored.decided_by_name, stored.reject_reason) == (
        "approved",
        "Mia Modo",
        None,
    )
    # The author is told once, in their language, with the link.
    [told] = await deliveries(sessionmaker, "decision", 7)
    assert told.text == t(
        "✅ Votre idée « {title} » a été approuvée : elle est visible par tous.\n{link}", "nl"
    ).format(title="Des bancs", link=idea_link(w.app, first))

    # A rejection with a reason among the presets, told in English.
    async with sessionmaker() as session:
        rejected = await w.use(session).ideas.decide(second, False, 602, "Noé", "offensive")
    assert rejected.outcome == Decision.DONE
    [told] = await deliveries(sessionmaker, "decision", 8)
    assert told.text == t(
        "❌ Votre idée « {title} » n’a pas été retenue par les modérateurs. Raison : {reason}.",
        "en",
    ).format(title="Des arbres", reason=t(REASONS["offensive"], "en"))
    assert "Raison" not in (told.text or "")  # English, not the French source


async def test_decide_concurrently_exactly_one_wins(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    w = db_app(tmp_path, sessionmaker)
    await add_member(sessionmaker, 7, "Anne")
    idea_id = await seed_idea(w, 7, "Disputée", status="pending")

    async def decide(moderator: int) -> Decision:
        async with sessionmaker() as session:
            result = await w.use(session).ideas.decide(
                idea_id, moderator % 2 == 0, moderator, f"Modo {moderator}", "other"
            )
            return result.outcome

    outcomes = await asyncio.gather(*(decide(600 + i) for i in range(5)))
    assert sorted(outcomes) == [Decision.ALREADY] * 4 + [Decision.DONE]
    assert len(await deliveries(sessionmaker, "decision", 7)) == 1


async def test_comment_notifications_grouped_per_ten_minutes(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    clock = Clock(NOW)
    w = make_app(tmp_path, sessionmaker, clock)
    await add_member(sessionmaker, 7, "Anne", lang="nl")  # the idea's author
    await add_member(sessionmaker, 8, "Bob")
    await add_member(sessionmaker, 9, "Chloé")
    idea_id = await seed_idea(w, 7, "Un potager partagé")

    async def comment(member_id: int, text: str, parent: int | None = None) -> int:
        async with sessionmaker() as session:
            service = w.use(session).ideas
            member = await MemberRepository(session).get(member_id)
            idea = await service.repo.get(idea_id)
            assert member is not None and idea is not None
            parent_comment = await service.repo.comment(parent) if parent else None
            return (await service.comment(member, idea, text, parent_comment)).id

    async def flush() -> int:
        async with sessionmaker() as session:
            return await w.use(session).ideas.flush_notifications()

    def note(n: int, lang: str) -> str:
        return TR.ngettext(
            "💬 {n} nouveau commentaire sur votre idée « {title} ».",
            "💬 {n} nouveaux commentaires sur votre idée « {title} ».",
            n,
            locale=lang,
        ).format(n=n, title="Un potager partagé")

    link = idea_link(w.app, idea_id)
    bob_comment = await comment(8, "Premier !")  # the author is told at once
    notes = await deliveries(sessionmaker, "notification", 7)
    assert [d.text for d in notes] == [f"{note(1, 'nl')}\n{link}"]

    clock.now = NOW + timedelta(minutes=3)
    await comment(9, "Deuxième.")
    clock.now = NOW + timedelta(minutes=4)
    await comment(9, "Je réponds à Bob.", parent=bob_comment)
    # Held back for the author; Bob, never told about this idea, hears of the reply at once.
    assert len(await deliveries(sessionmaker, "notification", 7)) == 1
    [to_bob] = await deliveries(sessionmaker, "notification", 8)
    assert to_bob.text == (
        TR.ngettext(
            "↩️ {n} nouvelle réponse à votre commentaire sur « {title} ».",
            "↩️ {n} nouvelles réponses à votre commentaire sur « {title} ».",
            1,
            locale="fr",
        ).format(n=1, title="Un potager partagé")
        + f"\n{link}"
    )
    # The comment author does not notify themselves.
    assert await deliveries(sessionmaker, "notification", 9) == []

    clock.now = NOW + timedelta(minutes=9, seconds=59)
    assert await flush() == 0
    assert len(await deliveries(sessionmaker, "notification", 7)) == 1

    clock.now = NOW + timedelta(minutes=10)
    assert await flush() == 1
    notes = await deliveries(sessionmaker, "notification", 7)
    assert [d.text for d in notes][1:] == [f"{note(2, 'nl')}\n{link}"]
    assert await flush() == 0  # nothing left to send
    async with sessionmaker() as session:
        state = await session.get(NotificationState, (7, idea_id))
        assert state is not None
        assert (state.pending_comments, state.pending_replies) == (0, 0)

    # Quiet for more than 10 minutes: the next comment is told at once again.
    clock.now = NOW + timedelta(minutes=25)
    await comment(8, "Encore moi.")
    assert len(await deliveries(sessionmaker, "notification", 7)) == 3


async def test_digest_of_newly_approved_ideas_for_officials(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    starts = NOW
    clock = Clock(starts)
    w = make_app(
        tmp_path, sessionmaker, clock, ideas_dates(starts, starts + timedelta(days=30)), digest="7d"
    )
    await add_member(sessionmaker, 3, "Olivia", lang="en", role=Role.OFFICIAL)
    await add_member(sessionmaker, 4, "Omer", lang="fr", role=Role.OFFICIAL)
    await add_member(sessionmaker, 7, "Anne")  # an ambassador: no digest
    await run_due(w.app, w.services, starts + timedelta(minutes=1))  # the ideas phase opened

    approved = []
    for day, title, project in [
        (1, "Des bancs", "inclusion"),
        (2, "Des arbres", "living_together"),
    ]:
        idea_id = await seed_idea(w, 7, title, project=project, status="pending")
        clock.now = starts + timedelta(days=day)
        async with sessionmaker() as session:
            await w.use(session).ideas.decide(idea_id, True, 601, "Mia")
        approved.append(idea_id)
    still_pending = await seed_idea(w, 7, "Pas encore décidée", status="pending")
    rejected = await seed_idea(w, 7, "Refusée", status="pending")
    async with sessionmaker() as session:
        await w.use(session).ideas.decide(rejected, False, 601, "Mia", "duplicate")

    done = await run_due(w.app, w.services, starts + timedelta(days=7, minutes=1))
    assert "ideas:digest:1:sent 2 ideas to 2" in done
    digests = await deliveries(sessionmaker, "digest:ideas")
    assert sorted(d.chat_id for d in digests) == [3, 4]  # one delivery per official
    english = next(d.text or "" for d in digests if d.chat_id == 3)
    assert english.startswith(
        TR.ngettext(
            "🗞 <b>{n} nouvelle idée approuvée</b> ({start} – {end})",
            "🗞 <b>{n} nouvelles idées approuvées</b> ({start} – {end})",
            2,
            locale="en",
        ).split("{n}")[0]
    )
    for idea_id, title in zip(approved, ["Des bancs", "Des arbres"], strict=True):
        assert f"• {title} — {idea_link(w.app, idea_id)}" in english
    assert "Pas encore décidée" not in english and "Refusée" not in english
    assert idea_link(w.app, still_pending) not in english
    assert idea_link(w.app, rejected) not in english

    # A week without newly approved ideas: nothing is sent.
    done = await run_due(w.app, w.services, starts + timedelta(days=14, minutes=1))
    assert done == ["ideas:digest:2:nothing new"]
    assert len(await deliveries(sessionmaker, "digest:ideas")) == 2
    # Run again: each digest happens once.
    assert await run_due(w.app, w.services, starts + timedelta(days=14, minutes=2)) == []


async def test_moderation_cards_in_the_moderation_language(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    w = db_app(tmp_path, sessionmaker)
    assert w.app.moderation_language == "fr"  # by default, the consultation's first language
    w.app.settings = w.app.settings.model_copy(update={"moderation_language": "de"})
    assert w.app.moderation_language == "fr"  # not a language of the consultation
    w.app.settings = w.app.settings.model_copy(update={"moderation_language": "nl"})
    await add_member(sessionmaker, 7, "Anne", lang="fr")
    async with sessionmaker() as session:
        member = await MemberRepository(session).get(7)
        assert member is not None
        idea = await w.use(session).ideas.submit(member, "inclusion", "Bancs", "Au parc.")
    [card] = await deliveries(sessionmaker, "moderation")
    head = t("💡 <b>Nouvelle idée n° {id}</b> — {project}", "nl").format(
        id=idea.id, project="Inclusie"
    )
    assert (card.text or "").startswith(head), card.text
    assert "Nouvelle idée" not in (card.text or "")
    buttons = [
        b["text"] for row in json.loads(card.reply_markup or "{}")["inline_keyboard"] for b in row
    ]
    assert buttons == [t("✅ Approuver", "nl"), t("❌ Rejeter", "nl")]
