"""Issue 8: what a member does can never be turned into something else — ids never reused,
access decided in one place, length budgets, erasure that erases only the member, quotas,
the audit log, strict ids, the moderators' list."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.methods import EditMessageText, GetChatAdministrators, SendMessage
from aiogram.types import (
    CallbackQuery,
    Chat,
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberMember,
    ChatMemberOwner,
    ChatMemberUpdated,
    Message,
    Update,
    User,
)
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import Role
from bot.ideas.cards import ModeratorDirectory, comments_card, idea_card
from bot.ideas.rules import MAX_ID, parse_id
from bot.members.privacy import forget
from bot.phases.transitions import digest_parts
from bot.text_budget import MESSAGE_LIMIT, clip_html, pages
from storage.models import (
    AuditEntry,
    Base,
    Comment,
    Delivery,
    Idea,
    Member,
    Report,
    Support,
)
from storage.repositories.ideas import IdeaRepository
from storage.repositories.members import MemberRepository
from tests.test_dialogs import Harness, RecordingBot, Wired, button
from tests.test_ideas_dialogs import (
    MOD_CHAT,
    NOW,
    add_member,
    db_app,
    deliveries,
    idea_row,
    member_client,
    open_ideas,
    rows,
    seed_idea,
    t,
)
from tests.test_ideas_dialogs import h as ideas_harness

h = ideas_harness  # the ideas tests' fixture: a dispatcher over a fresh SQLite database
ADMIN = 1  # in ADMIN_IDS of the test settings: a moderator too
GROUP = Chat(id=MOD_CHAT, type="supergroup", title="Modération")


async def press_in_group(
    h: Harness, dp: Any, user_id: int, data: str, text: str = "card", message_id: int = 4242
) -> None:
    """A moderator's press on a card in the moderation group, with the given callback data."""
    user = User(id=user_id, is_bot=False, first_name=f"Modo{user_id}")
    message = Message(message_id=message_id, date=NOW, chat=GROUP, text=text)
    query = CallbackQuery(
        id=f"q{user_id}{len(h.bot.calls)}",
        from_user=user,
        chat_instance="g",
        message=message,
        data=data,
    )
    await dp.feed_update(h.bot, Update(update_id=10_000 + len(h.bot.calls), callback_query=query))


def card_buttons(delivery: Delivery) -> dict[str, str]:
    markup = json.loads(delivery.reply_markup or "{}")
    return {b["text"]: b["callback_data"] for row in markup["inline_keyboard"] for b in row}


async def submit(w: Wired, member_id: int, title: str, text: str) -> int:
    async with w.services.sessionmaker() as session:
        member = await MemberRepository(session).get(member_id)
        assert member is not None
        return (await w.use(session).ideas.submit(member, "inclusion", title, text)).id


async def mark_sent(w: Wired, delivery_id: int, message_id: int) -> None:
    async with w.services.sessionmaker() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(status="sent", message_id=message_id, sent_at=NOW)
        )
        await session.commit()


# ----------------------------------------------------------------- 1. ids never reused


async def test_ids_are_never_reused_on_either_database(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        await MemberRepository(session).get_or_create(7, "Anne")
        repo = IdeaRepository(session)
        first = await repo.create("c", "p", 7, "Anne", "t", "x", NOW)
        comment = await repo.add_comment(first.id, 7, "Anne", "c", None, NOW)
        await session.commit()
        first_id, comment_id = first.id, comment.id
        await session.delete(comment)
        await session.delete(first)
        await session.commit()
        second = await repo.create("c", "p", 7, "Anne", "t", "x", NOW)
        other = await repo.add_comment(second.id, 7, "Anne", "c", None, NOW)
        await session.commit()
        assert second.id > first_id and other.id > comment_id


async def test_erase_resubmit_and_press_the_old_card(h: Harness) -> None:
    """The old card's ✅ can never approve the new idea: new id, new card, old press refused."""
    dp = h.dispatcher()
    await add_member(h.services.sessionmaker, 7, "Anne")
    old_id = await submit(h, 7, "Des bancs", "Un texte anodin.")
    [old_card] = await deliveries(h.services.sessionmaker, "moderation")
    old_approve = card_buttons(old_card)["✅ Approuver"]
    await mark_sent(h, old_card.id, 501)
    async with h.services.sessionmaker() as session:
        await forget(session, h.app, h.services.translator, 7)

    await add_member(h.services.sessionmaker, 7, "Anne")  # she comes back
    new_id = await submit(h, 7, "Autre chose", "Un texte que personne n’a vu.")
    assert new_id != old_id
    cards = await deliveries(h.services.sessionmaker, "moderation")
    assert len(cards) == 2  # the new card was not swallowed by the old one's dedupe key
    assert f"n° {new_id}" in (cards[1].text or "") and cards[1].status == "pending"

    await press_in_group(h, dp, ADMIN, old_approve, message_id=501)
    assert "Retirée par son auteur" in h.bot.alerts()[-1]
    assert (await idea_row(h, new_id)).status == "pending"
    assert (await idea_row(h, old_id)).status == "withdrawn"


def test_migration_keeps_rows_and_continues_above_ids_in_dedupe_keys(
    tmp_path: Path,
) -> None:
    import sqlite3

    from storage.db import upgrade

    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0003")
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO members (id, first_name, blocked, created_at) VALUES (7,'A',0,'2020-01-01')"
    )
    for i in (1, 2):
        db.execute(
            "INSERT INTO ideas (id, consultation_id, project_id, author_id, author_name, title, "
            "text, status, supports, created_at) VALUES (?, 'c', 'p', 7, 'A', 't', 'x', "
            "'approved', 1, '2020-01-01')",
            (i,),
        )
    db.execute(
        "INSERT INTO comments (id, idea_id, author_id, author_name, text, hidden, created_at) "
        "VALUES (1, 2, 7, 'A', 'hello', 0, '2020-01-01')"
    )
    db.execute("INSERT INTO supports (idea_id, member_id, created_at) VALUES (2, 7, '2020-01-01')")
    # Idea 3 was deleted once, but its card's key is still in the outbox.
    db.execute(
        "INSERT INTO deliveries (dedupe_key, topic, chat_id, is_group, status, attempts, "
        "next_attempt_at, created_at) VALUES ('c:card:idea:3', 'moderation', -1, 1, 'sent', 0, "
        "'2020-01-01', '2020-01-01')"
    )
    db.commit()
    db.close()
    upgrade(url)
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM ideas").fetchone() == (2,)
    assert db.execute("SELECT text, carded_at FROM comments").fetchone() == ("hello", "2020-01-01")
    assert db.execute("SELECT COUNT(*) FROM supports").fetchone() == (1,)
    assert (
        "AUTOINCREMENT"
        in db.execute("SELECT sql FROM sqlite_master WHERE name='ideas'").fetchone()[0]
    )
    db.execute("PRAGMA foreign_keys=ON")
    db.execute(
        "INSERT INTO ideas (consultation_id, project_id, author_name, title, text, status, "
        "supports, created_at) VALUES ('c', 'p', '', 't', 'x', 'pending', 0, '2020-01-02')"
    )
    assert db.execute("SELECT MAX(id) FROM ideas").fetchone() == (4,)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.close()


async def test_migration_upgrades_postgresql_with_data(postgres_url: str) -> None:
    """The fixture migrated to head; go back to 0003, add rows, upgrade again."""
    from sqlalchemy import text

    from storage.db import make_engine, upgrade_async

    await _downgrade(postgres_url, "0003")
    engine = make_engine(postgres_url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO members (id, first_name, blocked, created_at) VALUES (7,'A',false,now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO ideas (consultation_id, project_id, author_id, author_name, title, "
                "text, status, supports, created_at) VALUES ('c','p',7,'A','t','x','approved',0,now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO comments (idea_id, author_id, author_name, text, hidden, created_at) "
                "SELECT id, 7, 'A', 'hello', false, now() FROM ideas"
            )
        )
    await upgrade_async(postgres_url)
    async with engine.connect() as conn:
        assert (
            await conn.execute(text("SELECT count(*) FROM comments WHERE carded_at IS NOT NULL"))
        ).scalar() == 1
        assert (await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar() == 0
    await engine.dispose()


async def _downgrade(url: str, revision: str) -> None:
    import asyncio

    from alembic import command

    from storage.db import alembic_config

    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)


# ------------------------------------------------------------------- 3. access


async def test_invite_only_access_decided_for_every_private_update(h: Harness) -> None:
    h.app.consultation = h.app.consultation.model_copy(update={"access": "invite"})
    dp = h.dispatcher()
    stranger = member_client(h, dp, 66, "Mallory")
    refused = t(
        "Cette consultation est réservée aux personnes invitées. Ouvrez le lien "
        "d’invitation reçu des organisateurs."
    )
    for text in ("/menu", "bonjour", "/language", "/results", "/start", "/start idea_1"):
        before = len(h.bot.calls)
        await stranger.send(text)
        assert h.bot.texts()[-1] == refused, text
        assert len(h.bot.calls) == before + 1, text  # nothing else: no menu, no dialog
    # A forged button (the menu's "Ideas") is refused too.
    message = Message(message_id=9, date=NOW, chat=Chat(id=66, type="private"), text="x")
    await dp.feed_update(
        h.bot,
        Update(
            update_id=66_999,
            callback_query=CallbackQuery(
                id="forged",
                from_user=stranger.user,
                chat_instance="c",
                message=message,
                data="\x1d0\x1dideas",
            ),
        ),
    )
    assert h.bot.alerts()[-1] == refused
    # The stated exceptions answer.
    await stranger.send("/help")
    assert "<b>Aide</b>" in h.bot.texts()[-1]
    await stranger.send("/mydata")  # knocking at the door registered nothing
    assert h.bot.texts()[-1] == t("Nous ne conservons aucune donnée à votre sujet.")
    await stranger.send("/forget")
    assert "C’est définitif" in h.bot.texts()[-1]
    # An invitation opens the door.
    from bot.members.invitations import create_invitation

    async with h.services.sessionmaker() as session:
        token = await create_invitation(session, Role.AMBASSADOR, 1, None, NOW)
    await stranger.send(f"/start inv_{token}")
    assert t("✅ Invitation acceptée : bienvenue !") in h.bot.texts()
    await stranger.send("/menu")
    assert "Idées" in str(h.last().reply_markup)


# -------------------------------------------------------------- 4. length budgets


async def test_idea_screen_and_pending_fit_telegram_limits(h: Harness) -> None:
    await add_member(h.services.sessionmaker, 50, "B" * 100)
    idea_id = await seed_idea(h, 50, "&" * 100, "<" * 2000)
    async with h.services.sessionmaker() as session:
        repo = IdeaRepository(session)
        for i in range(7):
            await repo.add_comment(idea_id, 50, "C" * 100, f"{i}" + "&" * 999, None, NOW)
        await session.commit()
    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await anne.send(f"/start idea_{idea_id}")
    seen = set()
    for _ in range(10):
        body = h.last().text or ""
        assert len(body) <= MESSAGE_LIMIT
        assert "&amp;" * 10 in body and "…" in body
        seen.update(i for i in range(7) if f"<b>{'C' * 39}…</b> : {i}&amp;" in body)
        if "💬 ▶️" not in str(h.last().reply_markup):
            break
        await h.click(anne, "💬 ▶️")
    assert seen == set(range(7))  # every comment reachable by paging

    # /pending with many long titles: several messages, each within the limit, every idea.
    for i in range(60):
        await seed_idea(h, 50, f"{i:02d}" + "&" * 98, status="pending")
    admin = member_client(h, dp, ADMIN, "Admin")
    await admin.send("/pending")
    sent = [c.text for c in h.bot.calls if isinstance(c, SendMessage)]
    listing = [s for s in sent if "n° " in s and "&amp;" in s]
    assert len(listing) >= 2 and all(len(s) <= MESSAGE_LIMIT for s in listing)
    joined = "\n".join(listing)
    assert all(f"{i:02d}&amp;" in joined for i in range(60))


async def test_mydata_with_long_free_texts_fits(h: Harness) -> None:
    from storage.models import QuestionAnswer, Response

    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await anne.send("/start")
    async with h.services.sessionmaker() as session:
        response = Response(consultation_id=h.app.consultation.id, member_id=7, status="draft")
        session.add(response)
        await session.flush()
        for q in h.app.consultation.questions[:4]:
            session.add(QuestionAnswer(response_id=response.id, question_id=q.id, text="&" * 4000))
        await session.commit()
    before = len(h.bot.texts())
    await anne.send("/mydata")
    parts = h.bot.texts()[before:]
    assert len(parts) >= 2 and all(len(p) <= MESSAGE_LIMIT for p in parts)
    assert "Identifiant Telegram : 7" in parts[0] and "/forget" in parts[-1]


async def test_cards_and_digests_fit_telegram_limits(h: Harness) -> None:
    await add_member(h.services.sessionmaker, 50, "Bob")
    idea_id = await seed_idea(h, 50, "&" * 100, "&" * 2000, status="pending")
    idea = await idea_row(h, idea_id)
    assert len(idea_card(h.app, h.services.translator, idea, "fr")) <= MESSAGE_LIMIT
    comment = Comment(id=5, idea_id=idea_id, author_name="&" * 128, text="<" * 1000, parent_id=None)
    text, markup = comments_card(h.services.translator, [(idea, comment)] * 8, "fr")
    assert len(text) <= MESSAGE_LIMIT and len(markup.inline_keyboard) == 8
    ideas = [Idea(id=i, project_id="inclusion", title="&" * 100) for i in range(1, 80)]
    phase = h.app.consultation.phases[-1]
    parts = digest_parts(
        h.app, h.services.translator, phase, ideas, NOW - timedelta(days=7), NOW, "fr"
    )
    assert len(parts) > 1 and all(len(p) <= MESSAGE_LIMIT for p in parts)


def test_budget_helpers() -> None:
    assert clip_html("<" * 10, 8) == "&lt;…"  # never cut inside an entity
    assert clip_html("abc", 3) == "abc"
    assert pages([10, 10, 10, 50, 10], budget=30, most=5) == [(0, 3), (3, 4), (4, 5)]
    assert pages([], budget=30, most=5) == [(0, 0)]


# -------------------------------------------------------------------- 5. /forget


async def test_forget_erases_the_member_and_nothing_of_anyone_else(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    w = db_app(tmp_path, sessionmaker)
    secret_name, secret_title = "Zéphyrine", "Titre-secret-4242"
    secret_text, secret_comment = "Texte-secret-4242", "Commentaire-secret-4242"
    me = 987_654_321
    await add_member(sessionmaker, me, secret_name)
    await add_member(sessionmaker, 8, "Bob")
    await add_member(sessionmaker, 9, "Chloé", role=Role.OFFICIAL)
    await add_member(sessionmaker, 601, "Mia", role=Role.MODERATOR)
    approved = await seed_idea(w, me, secret_title, secret_text)
    pending = await submit(w, me, secret_title + "-bis", secret_text + "-bis")
    unsent = await submit(w, me, secret_title + "-ter", secret_text + "-ter")
    bobs = await seed_idea(w, 8, "L’idée de Bob", "Sur les bancs.", status="pending")

    async with sessionmaker() as session:
        service = w.use(session).ideas
        repo = service.repo
        member = await MemberRepository(session).get(me)
        bob = await MemberRepository(session).get(8)
        idea = await repo.get(approved)
        assert member is not None and bob is not None and idea is not None
        bob_on_mine = await service.comment(bob, idea, "Bob répond à l’idée.", None)
        bobs_idea = await repo.get(bobs)
        assert bobs_idea is not None
        mine = await service.comment(member, bobs_idea, secret_comment, None)
        bob_reply = await service.comment(bob, bobs_idea, "Bob répond au commentaire.", mine)
        await service.set_support(member, bobs, True)
        await service.report(member, bobs_idea, None)
        await repo.add_report("comment", mine.id, 8, NOW)
        await session.commit()
        mine_id, bob_on_mine_id, bob_reply_id = mine.id, bob_on_mine.id, bob_reply.id
    # Mia (a moderator) decided and hid: those copies of her name go when she erases hers.
    # A digest quoting the member's idea went to Chloé; the first group card was sent.
    async with sessionmaker() as session:
        await w.use(session).ideas.card_comments()
        await w.use(session).ideas.decide(bobs, True, 601, "Mia")
        await session.execute(
            update(Idea).where(Idea.id == approved).values(decided_by=601, decided_by_name="Mia")
        )
        await session.commit()
    for part in digest_parts(
        w.app,
        w.services.translator,
        w.app.consultation.phases[-1],
        [await idea_row(w, approved)],
        NOW,
        NOW,
        "fr",
    ):
        async with sessionmaker() as session:
            from storage.repositories.outbox import NewDelivery, OutboxRepository

            await OutboxRepository(session).enqueue(
                [NewDelivery("c:digest:x:9:0", "digest:ideas", 9, text=part)], NOW
            )
            await session.commit()
    card = (await deliveries(sessionmaker, "moderation"))[0]
    assert secret_title in (card.text or "")
    await mark_sent(w, card.id, 777)
    group_cards_before = {d.id for d in await deliveries(sessionmaker, "moderation")}

    async with sessionmaker() as session:
        edits = await forget(session, w.app, w.services.translator, me)
    async with sessionmaker() as session:
        await forget(session, w.app, w.services.translator, 601)

    # Every table, every column: nothing of the member remains.
    async with sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                cells = " | ".join(str(v) for v in row)
                for needle in (
                    str(me),
                    secret_name,
                    secret_title,
                    secret_text,
                    secret_comment,
                    "Mia",
                ):
                    assert needle not in cells, (table.name, needle, cells)
                assert "601" not in [str(v) for v in row], (table.name, cells)
    # The threads of others stay: Bob's comment on the erased idea, Bob's reply to the erased
    # comment; the erased ones are anonymised, not deleted.
    comments = {c.id: c for c in await rows(w, Comment)}
    assert comments[bob_on_mine_id].text == "Bob répond à l’idée."
    assert comments[bob_reply_id].parent_id == mine_id
    assert (comments[mine_id].author_id, comments[mine_id].text) == (None, "")
    assert comments[mine_id].erased_at is not None
    ideas = {i.id: i for i in await rows(w, Idea)}
    assert ideas[approved].status == "approved" and ideas[approved].erased_at is not None
    assert ideas[pending].status == ideas[unsent].status == "withdrawn"
    assert ideas[bobs].supports == 0 and ideas[bobs].decided_by_name is None
    assert await rows(w, Support) == []
    assert [r.reporter_id for r in await rows(w, Report)] == [8]  # Bob's report stays
    # Deliveries: none to the member; the pending card cancelled, the sent one edited.
    everything = await rows(w, Delivery)
    assert not [d for d in everything if d.chat_id == me]
    by_id = {d.id: d for d in everything}
    unsent_card = next(d for d in everything if d.dedupe_key.endswith(f":card:idea:{unsent}"))
    assert unsent_card.status == "cancelled" and unsent_card.reply_markup is None
    assert by_id[card.id].status == "sent" and by_id[card.id].dedupe_key.endswith(f":{pending}")
    assert by_id[card.id].text == t("🗑 Contenu effacé à la demande de son auteur.")
    assert [e.message_id for e in edits] == [777]
    assert group_cards_before <= set(by_id)  # redacted, not lost
    # Erasure is logged, without saying who.
    entries = await rows(w, AuditEntry, AuditEntry.action == "member.erase")
    assert len(entries) == 2 and all(e.actor_id is None and e.target_id is None for e in entries)


async def test_forget_edits_group_cards_and_nothing_but_a_message_registers_again(
    h: Harness,
) -> None:
    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await anne.send("/start")
    idea_id = await submit(h, 7, "Des bancs", "Texte.")
    [card] = await deliveries(h.services.sessionmaker, "moderation")
    await mark_sent(h, card.id, 321)
    await anne.send("/forget")
    sent = [c for c in h.bot.calls if isinstance(c, SendMessage)][-1]
    prompt = Message(
        message_id=77,
        date=NOW,
        chat=Chat(id=7, type="private"),
        text=sent.text,
        reply_markup=sent.reply_markup,
    )
    await anne.click(prompt, button("Oui, tout effacer"))
    edit = [c for c in h.bot.calls if isinstance(c, EditMessageText) and c.chat_id == MOD_CHAT]
    assert [(e.message_id, e.text) for e in edit] == [
        (321, t("🗑 Contenu effacé à la demande de son auteur."))
    ]
    assert (await idea_row(h, idea_id)).title == ""
    from storage.models import FsmRecord

    assert [r.key for r in await rows(h, FsmRecord) if ":7:" in r.key] == []
    # Blocking the bot afterwards, or pressing an old button, does not register her again.
    bot_user = User(id=42, is_bot=True, first_name="bot")
    kicked = ChatMemberUpdated(
        chat=Chat(id=7, type="private"),
        from_user=anne.user,
        date=NOW,
        old_chat_member=ChatMemberMember(user=bot_user),
        new_chat_member=ChatMemberBanned(user=bot_user, until_date=0),
    )
    await dp.feed_update(h.bot, Update(update_id=77_001, my_chat_member=kicked))
    await anne.click(prompt, button("Annuler"))
    async with h.services.sessionmaker() as session:
        assert await session.get(Member, 7) is None
    # Her own message does.
    await anne.send("/start")
    async with h.services.sessionmaker() as session:
        assert await session.get(Member, 7) is not None


# -------------------------------------------------------------------- 6. quotas


async def test_quotas_are_polite_and_configurable(h: Harness) -> None:
    h.app.settings = h.app.settings.model_copy(
        update={"quota_ideas_per_day": 2, "quota_comments_per_hour": 2, "quota_reports_per_day": 1}
    )
    await add_member(h.services.sessionmaker, 7, "Anne")
    await add_member(h.services.sessionmaker, 50, "Bob")
    for i in range(2):
        await submit(h, 7, f"Idée {i}", "Texte.")
    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await open_ideas(h, anne)
    await h.click(anne, "Proposer une idée")
    assert h.bot.alerts()[-1] == h.services.translator.ngettext(
        "Vous avez déjà proposé {n} idée ces dernières 24 heures : c’est le maximum. "
        "Merci ! Revenez demain pour la suivante.",
        "Vous avez déjà proposé {n} idées ces dernières 24 heures : c’est le maximum. "
        "Merci ! Revenez demain pour la suivante.",
        2,
    ).format(n=2)
    assert "Choisissez un projet" in (h.last().text or "")  # still on the same screen
    # A day later she may again.
    h.clock.now = NOW + timedelta(days=1, seconds=1)
    await h.click(anne, "Proposer une idée")
    assert "Pour quel projet ?" in (h.last().text or "")
    h.clock.now = NOW

    bobs = await seed_idea(h, 50, "Un potager", "Texte.")
    await anne.send(f"/start idea_{bobs}")
    for i in range(2):
        await h.click(anne, "Commenter")
        await anne.send(f"Commentaire {i}")
    await h.click(anne, "Commenter")
    assert "cette dernière heure" in h.bot.alerts()[-1]
    assert len(await rows(h, Comment)) == 2
    await h.click(anne, "Signaler")
    await h.click(anne, "L’idée elle-même")
    await h.click(anne, "Signaler")
    assert "signalement ces dernières 24 heures" in h.bot.alerts()[-1]
    assert len(await rows(h, Report)) == 1


async def test_comment_cards_are_batched(h: Harness) -> None:
    await add_member(h.services.sessionmaker, 50, "Bob")
    idea_id = await seed_idea(h, 50, "Un potager", "Texte.")
    async with h.services.sessionmaker() as session:
        service = h.use(session).ideas
        bob = await MemberRepository(session).get(50)
        idea = await service.repo.get(idea_id)
        assert bob is not None and idea is not None
        for i in range(40):
            await service.comment(bob, idea, f"Commentaire {i}", None)
    cards = await deliveries(h.services.sessionmaker, "moderation")
    assert len(cards) == 1  # the first at once; the others wait for the next round
    rounds = 0
    while len(await rows(h, Comment, Comment.carded_at.is_(None))) and rounds < 10:
        rounds += 1
        h.clock.now = NOW + timedelta(seconds=h.app.settings.comment_cards_every * rounds)
        async with h.services.sessionmaker() as session:
            queued = await h.use(session).ideas.card_comments()
        assert 1 <= queued <= 3
    cards = await deliveries(h.services.sessionmaker, "moderation")
    assert rounds == 2 and len(cards) == 1 + 3 + 2
    shown = "\n".join(c.text or "" for c in cards)
    assert all(f"Commentaire {i}\n" in shown + "\n" for i in range(40))
    assert all(len(card_buttons(c)) <= 8 for c in cards)


# ----------------------------------------------------------------- 7. audit log


async def test_audit_log_records_and_shows(h: Harness, tmp_path: Path) -> None:
    dp = h.dispatcher()
    await add_member(h.services.sessionmaker, 50, "Bob")
    idea_id = await seed_idea(h, 50, "Un potager", "Texte.", status="pending")
    other = await seed_idea(h, 50, "Autre", "Texte.", status="pending")
    async with h.services.sessionmaker() as session:
        service = h.use(session).ideas
        await service.decide(idea_id, True, ADMIN, "Mia")
        await service.decide(other, False, ADMIN, "Mia", "duplicate")
        await service.hide_idea(idea_id, ADMIN, "Mia")
        comment = await service.repo.add_comment(idea_id, 50, "Bob", "x", None, NOW)
        await session.commit()
        await service.hide_comment(comment.id, ADMIN, "Mia")
    from bot.members.invitations import create_invitation

    async with h.services.sessionmaker() as session:
        token = await create_invitation(session, Role.OFFICIAL, 3, timedelta(days=7), NOW)
    anne = member_client(h, dp, 7)
    await anne.send(f"/start inv_{token}")
    from bot.organisers.announce import announce

    async with h.services.sessionmaker() as session:
        await announce(session, h.app.consultation.id, "all", "Salut", NOW, "d1", ADMIN, "Mia")
    async with h.services.sessionmaker() as session:
        await forget(session, h.app, h.services.translator, 50)
    actions = [e.action for e in await rows(h, AuditEntry)]
    assert actions == [
        "idea.approve",
        "idea.reject",
        "idea.hide",
        "comment.hide",
        "invitation.create",
        "invitation.use",
        "member.role",
        "announce",
        "member.erase",
    ]
    await anne.send("/audit")
    assert h.bot.texts()[-1] == t("Cette commande est réservée aux organisateurs.")
    admin = member_client(h, dp, ADMIN, "Mia")
    await admin.send("/audit")
    shown = h.bot.texts()[-1]
    assert "Journal" in shown and "idea.reject idea" in shown and "duplicate" in shown
    assert "Mia (1)" in shown and "member.erase member" in shown


# ----------------------------------------------------------- 8. the smaller ones


def test_parse_id_is_strict() -> None:
    assert parse_id("12") == 12
    for bad in ("²", "١٢", "-1", "0", "1e3", " 12", "99999999999999999999", str(MAX_ID + 1), ""):
        assert parse_id(bad) is None, bad


async def test_strict_deep_links_and_forged_ids(h: Harness) -> None:
    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await anne.send("/start")
    for payload in ("idea_²", "idea_99999999999999999999", "idea_-3", "idea_"):
        await anne.send(f"/start {payload}")
        assert t("Ce lien ne mène à aucune idée : voici le menu.") in h.bot.texts(), payload
        assert "Idées" in str(h.last().reply_markup)
    # A forged card button with an id out of range: a polite refusal, no crash.
    await press_in_group(h, dp, ADMIN, "mi:approve:99999999999999999999:")
    assert h.bot.alerts()[-1] == t("Cette idée n’existe plus.")
    await press_in_group(h, dp, ADMIN, "mc:hide:99999999999")
    assert h.bot.alerts()[-1] == t("Ce commentaire n’existe plus.")
    # Not even a number: no handler recognises it, and the press is still answered.
    await press_in_group(h, dp, ADMIN, "mi:approve:²:")
    assert h.bot.alerts()[-1] == t("Ce bouton n’est plus actif.")


async def test_hidden_buttons_are_checked_again(h: Harness) -> None:
    """A forged press on a button `when` hides is refused by its handler."""
    before_ideas = NOW - timedelta(days=5)
    h.clock.now = before_ideas
    dp = h.dispatcher()
    anne = member_client(h, dp, 7)
    await anne.send("/start")
    menu = h.last()
    assert "Idées" not in str(menu.reply_markup)
    intent = menu.reply_markup.inline_keyboard[0][0].callback_data.split("\x1d")[0]  # type: ignore[union-attr]
    await dp.feed_update(
        h.bot,
        Update(
            update_id=7_900_001,
            callback_query=CallbackQuery(
                id="forge1",
                from_user=anne.user,
                chat_instance="c",
                message=menu,
                data=f"{intent}\x1dideas",
            ),
        ),
    )
    assert "La phase des idées s’ouvre le" in h.bot.alerts()[-1]
    assert "Choisissez un projet" not in (h.last().text or "")

    # Comment on her own pending idea (the screen shows it to her, without the buttons).
    h.clock.now = NOW
    mine = await seed_idea(h, 7, "En attente", status="pending")
    await anne.send(f"/start idea_{mine}")
    screen = h.last()
    assert "Commenter" not in str(screen.reply_markup)
    intent = screen.reply_markup.inline_keyboard[0][0].callback_data.split("\x1d")[0]  # type: ignore[union-attr]
    for widget in ("com", "rep"):
        await dp.feed_update(
            h.bot,
            Update(
                update_id=7_900_100 + len(h.bot.calls),
                callback_query=CallbackQuery(
                    id=f"forge-{widget}",
                    from_user=anne.user,
                    chat_instance="c",
                    message=screen,
                    data=f"{intent}\x1d{widget}",
                ),
            ),
        )
        assert h.bot.alerts()[-1] == t("Cette idée n’est pas (ou plus) disponible.")
    assert "Écrivez votre commentaire" not in (h.last().text or "")


def administrator(user: User) -> ChatMemberAdministrator:
    # Only the status and the user matter here; the rights (required booleans) change with
    # Bot API versions: all false.
    rights = {
        name: False
        for name, info in ChatMemberAdministrator.model_fields.items()
        if info.is_required() and name != "user"
    }
    return ChatMemberAdministrator(user=user, **rights)


class AdminsBot(RecordingBot):
    def __init__(self) -> None:
        super().__init__()
        self.admins: list[int] = [601]
        self.fail = False

    async def __call__(self, method: Any, request_timeout: int | None = None) -> Any:
        if isinstance(method, GetChatAdministrators):
            self.calls.append(method)
            if self.fail:
                from aiogram.exceptions import TelegramNetworkError

                raise TelegramNetworkError(method=method, message="down")
            return [
                ChatMemberOwner(user=User(id=a, is_bot=False, first_name="A"), is_anonymous=False)
                if i == 0
                else administrator(User(id=a, is_bot=False, first_name="A"))
                for i, a in enumerate(self.admins)
            ]
        return await super().__call__(method, request_timeout)


async def test_admin_list_cached_at_most_a_minute_refreshed_and_failing_closed() -> None:
    now = [0.0]
    directory = ModeratorDirectory(clock=lambda: now[0])
    bot = AdminsBot()
    assert directory.ttl <= 60
    assert await directory.admins(bot, MOD_CHAT) == {601}  # type: ignore[arg-type]
    bot.admins = []  # demoted
    now[0] = 30
    assert await directory.admins(bot, MOD_CHAT) == {601}  # type: ignore[arg-type]
    now[0] = 61
    assert await directory.admins(bot, MOD_CHAT) == frozenset()  # type: ignore[arg-type]
    bot.admins = [601]
    directory.forget(MOD_CHAT)  # what a chat_member update does
    assert await directory.admins(bot, MOD_CHAT) == {601}  # type: ignore[arg-type]
    bot.fail = True
    directory.forget(MOD_CHAT)
    assert await directory.admins(bot, MOD_CHAT) == frozenset()  # type: ignore[arg-type]


async def test_chat_member_update_refreshes_the_moderators(h: Harness) -> None:
    bot = AdminsBot()
    h.bot = bot
    dp = h.dispatcher()
    await add_member(h.services.sessionmaker, 50, "Bob")
    idea_id = await seed_idea(h, 50, "Un potager", status="pending")
    await press_in_group(h, dp, 601, f"mi:reject:{idea_id}:")
    assert bot.calls.count(GetChatAdministrators(chat_id=MOD_CHAT)) == 1
    bot.admins = []
    demoted = ChatMemberUpdated(
        chat=GROUP,
        from_user=User(id=600, is_bot=False, first_name="Owner"),
        date=NOW,
        old_chat_member=administrator(User(id=601, is_bot=False, first_name="Mia")),
        new_chat_member=ChatMemberMember(user=User(id=601, is_bot=False, first_name="Mia")),
    )
    await dp.feed_update(bot, Update(update_id=88_001, chat_member=demoted))
    await press_in_group(h, dp, 601, f"mi:approve:{idea_id}:")
    assert h.bot.alerts()[-1] == t("Seuls les modérateurs peuvent décider.")
    assert (await idea_row(h, idea_id)).status == "pending"
    assert "chat_member" in dp.resolve_used_update_types()


def test_webhook_secret_required_and_api_url_checked() -> None:
    from bot.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="WEBHOOK_URL is set without WEBHOOK_SECRET"):
        load_settings(webhook_url="https://bot.example.org", _env_file=None)
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET may only hold"):
        load_settings(webhook_url="https://x.org", webhook_secret="a b", _env_file=None)
    # A one-character secret was accepted: whoever finds the URL guesses it.
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET is too short"):
        load_settings(webhook_url="https://x.org", webhook_secret="s", _env_file=None)
    assert load_settings(
        webhook_url="https://x.org", webhook_secret="s3cret-0123456789", _env_file=None
    )
    for url in ("localhost:8081", "http//x", "http://exa mple.org", "http://h:99999", "ftp://h"):
        with pytest.raises(ConfigError, match="TELEGRAM_API_URL is invalid"):
            load_settings(telegram_api_url=url, _env_file=None)


def test_redaction_hides_token_and_secret() -> None:
    import logging

    from bot.redaction import RedactingFormatter, redact

    token = "123456789:AAE" + "x" * 32
    assert token not in redact(f"GET http://h/bot{token}/getMe failed")
    assert "s3cret" not in redact("bad s3cret", ["s3cret"])
    formatter = RedactingFormatter("%(message)s", ["s3cret"])
    try:
        raise ValueError(f"url http://h/bot{token}/getMe and s3cret")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, "f", 1, "boom %s", (token,), sys.exc_info())
    out = formatter.format(record)
    assert token not in out and "s3cret" not in out and "Traceback" in out
