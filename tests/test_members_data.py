"""Issue 19, the members' data: moderation buttons honoured only on the card they were posted
as (a restored backup cannot misapply them), erasure of re-sent cards, quotas that survive
/forget, ids never reused, exports audited, invitations and roles revocable."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiogram.methods import SendMessage
from aiogram.types import CallbackQuery, Chat, Message, Update, User
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import Role
from bot.ideas.cards import resend_card
from bot.ideas.rules import Quota
from bot.members.invitations import create_invitation, revoke_invitation, revoke_role
from bot.members.privacy import forget
from storage.db import backup_sqlite, make_engine, make_sessionmaker, upgrade_async
from storage.dialog_state.sql_storage import SQLStorage
from storage.models import (
    AuditEntry,
    Comment,
    Delivery,
    Invitation,
    ModerationCard,
    QuotaEvent,
    Report,
)
from storage.repositories.members import MemberRepository, recipients
from tests.test_dialogs import Clock, Harness
from tests.test_ideas_dialogs import (
    MOD_CHAT,
    NOW,
    add_member,
    deliveries,
    idea_row,
    make_app,
    member_client,
    rows,
    seed_idea,
    t,
)
from tests.test_member_safety import ADMIN, card_buttons, mark_sent, press_in_group, submit
from tests.test_outbox import ScriptedBot, run_outbox

OUT_OF_DATE = (
    "Cette carte n’est plus à jour : rien n’a été changé. /pending (en privé) "
    "renvoie la carte d’une idée en attente."
)


def put_back(backup: Path, path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, path)


class Site:
    """A bot's database file, opened (and re-opened after a restore) as a test harness."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.path = tmp_path / "site.db"
        self.url = f"sqlite+aiosqlite:///{self.path}"
        self.harness: Harness | None = None
        self._engine: Any = None

    async def open(self) -> Harness:
        await upgrade_async(self.url)
        self._engine = make_engine(self.url)
        sessionmaker = make_sessionmaker(self._engine)
        clock = Clock(NOW)
        w = make_app(self.tmp_path, sessionmaker, clock)
        self.harness = Harness(w.app, w.services, SQLStorage(sessionmaker), clock)
        return self.harness

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def restore(self, backup: Path) -> Harness:
        """What an operator does: stop the bot, put the backup in place, start again."""
        await self.close()
        put_back(backup, self.path)
        return await self.open()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    s = Site(tmp_path)
    yield s
    await s.close()


async def send_cards(sessionmaker: async_sessionmaker[AsyncSession], bot: ScriptedBot) -> None:
    """The real outbox sends what is queued and records the message ids Telegram gave."""

    async def all_sent() -> bool:
        async with sessionmaker() as session:
            open_rows = await session.scalars(
                select(Delivery.id).where(Delivery.status.in_(("pending", "sending")))
            )
            return not open_rows.all()

    await run_outbox(sessionmaker, bot, all_sent)


async def card_of(h: Harness, idea_id: int) -> Delivery:
    cards = await deliveries(h.services.sessionmaker, "moderation", MOD_CHAT)
    [card] = [c for c in cards if f"n° {idea_id}" in (c.text or "")]
    return card


# ------------------------------------------------ A. buttons honoured on their own card


async def test_restored_backup_old_card_cannot_approve_another_members_idea(site: Site) -> None:
    telegram = ScriptedBot()  # Telegram's message ids keep growing across the restore
    h = await site.open()
    await add_member(h.services.sessionmaker, 7, "Anne")
    await add_member(h.services.sessionmaker, 8, "Bram")
    first = await submit(h, 7, "Des bancs", "Au parc.")
    await send_cards(h.services.sessionmaker, telegram)
    backup = site.tmp_path / "backup.db"
    backup_sqlite(site.path, backup)

    # After the backup: Anne's second idea is carded, the card posted as message m.
    lost = await submit(h, 7, "Une idée perdue", "Écrite après la sauvegarde.")
    await send_cards(h.services.sessionmaker, telegram)
    old_card = await card_of(h, lost)
    assert old_card.message_id is not None
    old_approve = card_buttons(old_card)["✅ Approuver"]

    # The database is restored: Bram's new idea gets the id that Anne's lost idea had.
    h = await site.restore(backup)
    reused = await submit(h, 8, "Un potager", "Le texte de Bram.")
    assert reused == lost
    await send_cards(h.services.sessionmaker, telegram)
    new_card = await card_of(h, reused)
    assert new_card.message_id != old_card.message_id

    dp = h.dispatcher()
    await press_in_group(h, dp, ADMIN, old_approve, message_id=old_card.message_id)
    assert h.bot.alerts()[-1] == t(OUT_OF_DATE)
    assert (await idea_row(h, reused)).status == "pending"  # nothing changed

    # The card Bram's idea was posted as still works, and so does the first idea's.
    await press_in_group(h, dp, ADMIN, old_approve, message_id=new_card.message_id)
    assert (await idea_row(h, reused)).status == "approved"
    first_card = await card_of(h, first)
    await press_in_group(
        h, dp, ADMIN, card_buttons(first_card)["✅ Approuver"], message_id=first_card.message_id
    )
    assert (await idea_row(h, first)).status == "approved"


async def test_every_resent_card_counts_and_a_forged_message_id_does_not(site: Site) -> None:
    h = await site.open()
    dp = h.dispatcher()
    await add_member(h.services.sessionmaker, 7, "Anne")
    idea_id = await submit(h, 7, "Des bancs", "Au parc.")
    async with h.services.sessionmaker() as session:
        idea = await h.use(session).ideas.repo.get(idea_id)
        assert idea is not None
        assert await resend_card(session, h.app, h.services.translator, idea, NOW)
        await session.commit()
    first, again = await deliveries(h.services.sessionmaker, "moderation")
    await mark_sent(h, first.id, 301)
    await mark_sent(h, again.id, 302)
    reject = card_buttons(first)["❌ Rejeter"]
    # A card of another idea, or a message that is no card at all: refused, nothing asked.
    await press_in_group(h, dp, ADMIN, reject, message_id=999)
    assert h.bot.alerts()[-1] == t(OUT_OF_DATE)
    # Either live card of the idea works: the first shows the reasons, the re-sent one decides.
    await press_in_group(h, dp, ADMIN, reject, message_id=301)
    assert h.bot.alerts()[-1] != t(OUT_OF_DATE)
    await press_in_group(h, dp, ADMIN, f"mi:reason:{idea_id}:duplicate", message_id=302)
    assert (await idea_row(h, idea_id)).status == "rejected"


async def test_comment_hide_button_only_on_its_card(site: Site) -> None:
    h = await site.open()
    dp = h.dispatcher()
    await add_member(h.services.sessionmaker, 7, "Anne")
    await add_member(h.services.sessionmaker, 8, "Bram")
    idea_id = await seed_idea(h, 7, "Des bancs")
    async with h.services.sessionmaker() as session:
        bram = await MemberRepository(session).get(8)
        ideas = h.use(session).ideas
        idea = await ideas.repo.get(idea_id)
        assert bram is not None and idea is not None
        comment = await ideas.comment(bram, idea, "Bonne idée", None)
    [batch] = await deliveries(h.services.sessionmaker, "moderation")
    cards = [(c.delivery_id, c.target, c.target_id) for c in await rows(h, ModerationCard)]
    assert cards == [(batch.id, "comment", comment.id)]
    await mark_sent(h, batch.id, 401)
    await press_in_group(h, dp, ADMIN, f"mc:hide:{comment.id}", message_id=400)
    assert h.bot.alerts()[-1] == t(OUT_OF_DATE)
    assert not (await rows(h, Comment, Comment.id == comment.id))[0].hidden
    await press_in_group(h, dp, ADMIN, f"mc:hide:{comment.id}", message_id=401)
    assert (await rows(h, Comment, Comment.id == comment.id))[0].hidden


async def test_forget_reaches_the_cards_resent_from_pending(site: Site) -> None:
    h = await site.open()
    await add_member(h.services.sessionmaker, 7, "Anne")
    idea_id = await submit(h, 7, "Des bancs secrets", "Au parc de mon quartier.")
    for minute in (1, 2):
        async with h.services.sessionmaker() as session:
            idea = await h.use(session).ideas.repo.get(idea_id)
            assert idea is not None
            later = NOW.replace(minute=NOW.minute + minute)
            assert await resend_card(session, h.app, h.services.translator, idea, later)
            await session.commit()
    cards = await deliveries(h.services.sessionmaker, "moderation")
    assert len(cards) == 3
    await mark_sent(h, cards[0].id, 501)
    await mark_sent(h, cards[2].id, 503)  # the first re-sent card is still to be sent
    async with h.services.sessionmaker() as session:
        edits = await forget(session, h.app, h.services.translator, 7)
    assert sorted(e.message_id for e in edits) == [501, 503]
    assert all(e.reply_markup is None and "secrets" not in e.text for e in edits)
    after = await deliveries(h.services.sessionmaker, "moderation")
    assert [c.status for c in after] == ["sent", "cancelled", "sent"]
    for card in after:
        assert "secrets" not in (card.text or "") and "quartier" not in (card.text or "")
        assert card.reply_markup is None


async def test_group_upgraded_to_a_supergroup_gets_fresh_cards_that_work(site: Site) -> None:
    from bot.ideas.cards import follow_chat_migration

    supergroup = -1009876543210
    h = await site.open()
    dp = h.dispatcher()
    await add_member(h.services.sessionmaker, 7, "Anne")
    idea_id = await submit(h, 7, "Des bancs", "Au parc.")
    [old] = await deliveries(h.services.sessionmaker, "moderation")
    await mark_sent(h, old.id, 601)  # posted in the group before its upgrade
    async with h.services.sessionmaker() as session:
        assert await follow_chat_migration(
            session, h.app, h.services.translator, MOD_CHAT, supergroup, NOW
        )
        await session.commit()
    fresh = (await deliveries(h.services.sessionmaker, "moderation", supergroup))[0]
    assert f"n° {idea_id}" in (fresh.text or "") and fresh.status == "pending"
    await mark_sent(h, fresh.id, 7)
    approve = card_buttons(fresh)["✅ Approuver"]
    # The same message id in the supergroup is not the old card: only the fresh one counts.
    group = Chat(id=supergroup, type="supergroup", title="Modération")
    await press_in_chat(h, dp, group, approve, message_id=601)
    assert h.bot.alerts()[-1] == t(OUT_OF_DATE)
    await press_in_chat(h, dp, group, approve, message_id=7)
    assert (await idea_row(h, idea_id)).status == "approved"


async def press_in_chat(h: Harness, dp: Any, chat: Chat, data: str, message_id: int) -> None:
    query = CallbackQuery(
        id=f"q{len(h.bot.calls)}",
        from_user=User(id=ADMIN, is_bot=False, first_name="Olga"),
        chat_instance="g",
        message=Message(message_id=message_id, date=NOW, chat=chat, text="card"),
        data=data,
    )
    await dp.feed_update(h.bot, Update(update_id=20_000 + len(h.bot.calls), callback_query=query))


# ------------------------------------------------------- D. quotas outlive /forget


async def test_forget_then_start_does_not_reset_the_quotas(site: Site) -> None:
    h = await site.open()
    h.app.settings = h.app.settings.model_copy(
        update={"quota_ideas_per_day": 1, "quota_comments_per_hour": 1, "quota_reports_per_day": 1}
    )
    await add_member(h.services.sessionmaker, 50, "Bob")
    bobs = await seed_idea(h, 50, "Un potager")
    await add_member(h.services.sessionmaker, 7, "Anne")

    async def anne() -> tuple[Any, Any]:
        session = h.services.sessionmaker()
        member = await MemberRepository(session).get(7)
        return session, member

    session, member = await anne()
    async with session:
        ideas = h.use(session).ideas
        idea = await ideas.repo.get(bobs)
        assert idea is not None
        await ideas.submit(member, "inclusion", "Des bancs", "Au parc.")
        await ideas.comment(member, idea, "Oui", None)
        assert await ideas.report(member, idea, None)
        assert [await ideas.within_quota(member, q) for q in Quota] == [False] * 3
    async with h.services.sessionmaker() as session:
        await forget(session, h.app, h.services.translator, 7)
    await add_member(h.services.sessionmaker, 7, "Anne")  # /start again
    session, member = await anne()
    async with session:
        ideas = h.use(session).ideas
        assert [await ideas.within_quota(member, q) for q in Quota] == [False] * 3
    # Nothing in the counts says who: no Telegram id, no name, no text.
    events = await rows(h, QuotaEvent)
    assert len(events) == 3 and all(
        e.actor not in ("7", "Anne") and len(e.actor) == 64 for e in events
    )
    # Once the windows have passed she may again, and the old events are gone.
    h.clock.now = NOW + timedelta(days=1, seconds=1)
    session, member = await anne()
    async with session:
        ideas = h.use(session).ideas
        assert [await ideas.within_quota(member, q) for q in Quota] == [True] * 3
        await ideas.submit(member, "inclusion", "Encore", "Un texte.")
    assert [e.at for e in await rows(h, QuotaEvent)] == [NOW + timedelta(days=1, seconds=1)]


# ------------------------------------------------ E. report ids never reused


async def test_report_ids_are_never_reused_after_forget(site: Site) -> None:
    h = await site.open()
    await add_member(h.services.sessionmaker, 50, "Bob")
    bobs = await seed_idea(h, 50, "Un potager")
    for member_id, name in ((7, "Anne"), (8, "Carl")):
        await add_member(h.services.sessionmaker, member_id, name)

    async def report(member_id: int) -> None:
        async with h.services.sessionmaker() as session:
            member = await MemberRepository(session).get(member_id)
            ideas = h.use(session).ideas
            idea = await ideas.repo.get(bobs)
            assert member is not None and idea is not None
            assert await ideas.report(member, idea, None)

    await report(7)
    [first] = await rows(h, Report)
    async with h.services.sessionmaker() as session:
        await forget(session, h.app, h.services.translator, 7)
    assert await rows(h, Report) == []
    await report(8)
    [second] = await rows(h, Report)
    assert second.id > first.id
    # Carl's report has a card of its own (an id given again would share the erased one's key).
    cards = [
        c
        for c in await deliveries(h.services.sessionmaker, "moderation")
        if "signalée" in (c.text or "")
    ]
    assert len(cards) == 2 and cards[1].status == "pending"


# ------------------------------------------------ F. exports in the audit log


async def test_export_in_telegram_is_audited(site: Site) -> None:
    h = await site.open()
    dp = h.dispatcher()
    await add_member(h.services.sessionmaker, 50, "Bob")
    await seed_idea(h, 50, "Un potager")
    await seed_idea(h, 50, "Des bancs")
    olga = member_client(h, dp, ADMIN, "Olga")
    await olga.send("/export ideas csv")
    await h.services.exports.finished()  # the files are delivered beside the updates
    [entry] = await rows(h, AuditEntry, AuditEntry.action == "export")
    assert (entry.actor_id, entry.actor_name, entry.target, entry.target_id) == (
        ADMIN,
        "Olga",
        "export",
        "csv",
    )
    assert entry.detail == "ideas=2 rows=2" and entry.at == NOW


# ------------------------------------------------ G. invitations and roles revoked


async def test_a_revoked_invitation_grants_nothing_and_says_so(site: Site) -> None:
    h = await site.open()
    dp = h.dispatcher()
    async with h.services.sessionmaker() as session:
        token = await create_invitation(session, Role.OFFICIAL, None, None, NOW)
        [invitation] = await rows(h, Invitation)
        assert await revoke_invitation(session, invitation.id, NOW)
    anne = member_client(h, dp, 7, "Anne")
    await anne.send(f"/start inv_{token}")
    texts = [c.text for c in h.bot.calls if isinstance(c, SendMessage)]
    assert (
        t(
            "❌ Ce lien d’invitation a été retiré par les organisateurs. Demandez-leur un "
            "nouveau lien si vous pensez qu’il s’agit d’une erreur."
        )
        in texts
    )
    async with h.services.sessionmaker() as session:
        member = await MemberRepository(session).get(7)
        assert member is not None and Role.OFFICIAL not in member.role_names
        assert await recipients(session, [Role.OFFICIAL], "fr") == []
    [entry] = await rows(h, AuditEntry, AuditEntry.action == "invitation.revoke")
    assert entry.target_id == str(invitation.id)


async def test_a_revoked_moderator_cannot_decide_from_the_next_tap(site: Site) -> None:
    from tests.test_moderation_chat import GroupBot

    h = await site.open()
    h.bot = GroupBot()  # the moderation group has no administrators: the role decides
    dp = h.dispatcher()
    await add_member(h.services.sessionmaker, 7, "Anne")
    async with h.services.sessionmaker() as session:
        token = await create_invitation(session, Role.MODERATOR, None, None, NOW)
    mia = member_client(h, dp, 60, "Mia")
    await mia.send(f"/start inv_{token}")
    first = await submit(h, 7, "Des bancs", "Au parc.")
    second = await submit(h, 7, "Un potager", "Derrière l’école.")
    cards = await deliveries(h.services.sessionmaker, "moderation")
    for message_id, card in enumerate(cards, start=700):
        await mark_sent(h, card.id, message_id)
    await press_in_group(h, dp, 60, f"mi:approve:{first}:", message_id=700)
    assert (await idea_row(h, first)).status == "approved"

    async with h.services.sessionmaker() as session:
        assert await revoke_role(session, 60, Role.MODERATOR, NOW)
    await press_in_group(h, dp, 60, f"mi:approve:{second}:", message_id=701)
    assert h.bot.alerts()[-1] == t("Seuls les modérateurs peuvent décider.")
    assert (await idea_row(h, second)).status == "pending"
    # Opening the old invitation link again does not give the role back.
    await mia.send(f"/start inv_{token}")
    await press_in_group(h, dp, 60, f"mi:approve:{second}:", message_id=701)
    assert (await idea_row(h, second)).status == "pending"
    [entry] = await rows(h, AuditEntry, AuditEntry.detail == "-moderator")
    assert (entry.action, entry.target, entry.target_id) == ("member.role", "member", "60")


# ------------------------------------------------ B. the review screen within 4096


async def test_review_with_every_text_answer_at_its_maximum_still_submits(
    tmp_path: Path,
) -> None:
    from bot.config import Settings
    from bot.consultation import parse_consultation
    from bot.context import AppContext
    from bot.services import AppServices
    from bot.text_budget import MESSAGE_LIMIT, units
    from tests.support import answer_survey, default_document, survey_now, with_dates
    from tests.test_dialogs import button

    document = with_dates(default_document(), survey_now(NOW))
    for i in range(3):
        document["questions"].append(
            {
                "id": f"remark{i}",
                "kind": "text",
                "text": {"fr": f"Remarque {i} ?", "nl": f"Opmerking {i}?", "en": f"Remark {i}?"},
                "max_length": 4000,
            }
        )
    consultation = parse_consultation(yaml.safe_dump(document, allow_unicode=True))
    url = f"sqlite+aiosqlite:///{tmp_path / 'review.db'}"
    await upgrade_async(url)
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    clock = Clock(NOW)
    settings = Settings(bot_token=None, database_url=url, throttle_burst=10_000)
    app = AppContext(settings=settings, consultation=consultation, clock=clock)
    h = Harness(app, AppServices.create(sessionmaker), SQLStorage(sessionmaker), clock)
    try:
        # Emoji count twice in UTF-16, and "<&" grow when escaped: the worst case.
        longest = ("😀 <&> é " * 1000)[:4000]
        answers: dict[str, Any] = {
            q.id: [q.options[0].id] for q in consultation.questions if q.kind != "text"
        }
        answers["rehab_priority"] = ["no"]
        answers["challenges"] = ["strategy"]  # every question asked (the axes' condition)
        answers |= {f"remark{i}": longest for i in range(3)}
        await add_member(sessionmaker, 7, "Anne")
        async with sessionmaker() as session:
            await answer_survey(session, consultation, 7, answers, NOW, submit=False)
        client = h.client()
        await client.send("/start")
        await h.click(client, "Continuer le sondage")  # everything answered: the review
        if "Dans quelle commune" in (h.last().text or ""):  # asked once, before the survey
            await h.click(client, "Je préfère ne pas le dire")
        review = h.last()
        assert (review.text or "").startswith("<b>Vos réponses</b>")
        assert units(review.text or "") <= MESSAGE_LIMIT
        assert "…" in (review.text or "")
        # A text question's own screen, with its long answer, fits too.
        for i in (7, 8, 9):
            await client.click(review, button(f"✏️ {i}"))
            assert units(h.last().text or "") <= MESSAGE_LIMIT
            await h.click(client, "Valider")
            review = h.last()
        await client.click(review, button("Envoyer mes réponses"))
        assert (h.last().text or "").startswith("🙏 Merci")
        assert await h.status(7) == "submitted"
        stored = await h.answers(7)
        assert set(stored) >= {"remark0", "remark1", "remark2"}
    finally:
        await engine.dispose()
