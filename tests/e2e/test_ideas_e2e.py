"""The ideas phase end to end: a member submits an idea from the menu, the moderation group
decides on its card (only moderators, first one wins), another member opens the shared link,
supports and comments; a second idea is rejected with a reason told in its author's language."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.consultation import load_consultation
from bot.i18n import Translator
from playground import BotAPIEmulator, CallbackAnswer, Click, SimUser, TranscriptEntry
from storage.db import make_engine, make_sessionmaker
from storage.models import Comment, Delivery, Idea, Support
from tests.e2e.conftest import E2E, wait_button

TR = Translator()
MOD_CHAT = -100123
BOT_LINK = "https://t.me/consultbot_test_bot?start=idea_"


def t(msgid: str, lang: str) -> str:
    return TR.gettext(msgid, locale=lang)


def ideas_now(now: datetime) -> dict[str, tuple[datetime, datetime]]:
    return {
        "survey": (now - timedelta(days=40), now - timedelta(days=30)),
        "results": (now - timedelta(days=29), now - timedelta(days=20)),
        "ideas": (now - timedelta(days=1), now + timedelta(days=30)),
    }


async def db_rows(url: str, model: Any, *where: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.scalars(select(model).where(*where))).all())
    finally:
        await engine.dispose()


async def db_idea(url: str, idea_id: int) -> Idea:
    [idea] = await db_rows(url, Idea, Idea.id == idea_id)
    return idea


async def submit_idea(
    user: SimUser, lang: str, project: str, title: str, text: str, *, started: bool = False
) -> tuple[int, CallbackAnswer]:
    """/start -> Ideas -> Propose -> project -> title -> text -> send to the moderators."""
    if not started:
        await user.send("/start")
    await wait_button(user, t("💡 Idées", lang))
    await user.click(t("💡 Idées", lang))
    await wait_button(user, t("✍️ Proposer une idée", lang))
    await user.click(t("✍️ Proposer une idée", lang))
    await wait_button(user, project)
    await user.click(project)
    await user.wait_for_message(
        t("Donnez un titre court à votre idée (100 caractères au plus).", lang)
    )
    await user.send(title)
    await user.wait_for_message(
        t("Décrivez maintenant votre idée (2 000 caractères au plus).", lang)
    )
    await user.send(text)
    preview = await user.wait_for_message(title)
    assert text in preview.text
    answer = await user.click(t("✅ Envoyer aux modérateurs", lang))
    found = re.search(r"(\d+)", answer.text or "")
    assert answer.show_alert and found, answer
    return int(found.group(1)), answer


def card_count(emu: BotAPIEmulator, needle: str) -> int:
    return sum(needle in e.text for e in emu.bot_messages(MOD_CHAT))


def callback_data(entry: TranscriptEntry, text: str) -> str:
    assert entry.markup is not None, entry
    return next(
        b["callback_data"]
        for row in entry.markup["inline_keyboard"]
        for b in row
        if b["text"] == text
    )


async def press_stale_button(
    emu: BotAPIEmulator,
    user: SimUser,
    entry: TranscriptEntry,
    text: str,
    data: str,
    timeout: float = 10.0,
) -> CallbackAnswer:
    """A click on a button the message no longer has: a moderator whose app still showed the
    card's first keyboard. Telegram sends the callback with the message as it is now."""
    loop = asyncio.get_running_loop()
    click = Click(
        query_id=f"stale{emu.seq}",
        user_id=user.id,
        chat_id=entry.chat_id,
        message_id=entry.message_id,
        button_text=text,
        callback_data=data,
        seq=emu._next_seq(),
        future=loop.create_future(),
    )
    emu._clicks[click.query_id] = click
    emu._chats[entry.chat_id].events.append(click)
    emu._enqueue(
        "callback_query",
        {
            "id": click.query_id,
            "from": user.as_dict(),
            "message": entry.message,
            "chat_instance": "7919",
            "data": data,
        },
    )
    return await asyncio.wait_for(click.future, timeout)


async def test_idea_submitted_moderated_supported_commented(e2e: E2E) -> None:
    now = datetime.now(UTC)
    path = e2e.consultation(ideas_now(now))
    consultation = load_consultation(path)
    emu = e2e.emulator
    anne = emu.add_user(1001, "Anne", "fr")
    bram = emu.add_user(1002, "Bram", "nl")
    mia = emu.add_user(601, "Mia", "fr")  # administrator of the group
    noe = emu.add_user(602, "Noé", "fr")  # administrator of the group
    carl = emu.add_user(603, "Carl", "fr")  # only a member of the group
    emu.add_group(MOD_CHAT, "Modération", admins=[mia.id, noe.id], members=[carl.id])
    bot = e2e.bot(path, MODERATION_CHAT_ID=str(MOD_CHAT))
    # Anne writes while the bot starts: Telegram keeps the update, and the bot's first poll
    # returns at once instead of waiting out a long poll.
    await anne.send("/start")
    await bot.start()
    url = e2e.database_url
    inclusion = consultation.phases[2].projects[0]
    assert inclusion.id == "inclusion"

    # 1. Anne (fr) submits an idea through the menu buttons.
    title = "Des bancs dans les parcs"
    text = "Pour que les aînés puissent se reposer en se promenant."
    idea_id, answer = await submit_idea(
        anne, "fr", inclusion.title["fr"], title, text, started=True
    )
    assert answer.text == t(
        "Merci ! Votre idée n° {id} est en attente de modération. Vous serez prévenu de la "
        "décision.",
        "fr",
    ).format(id=idea_id)
    assert (await db_idea(url, idea_id)).status == "pending"

    # 2. The card appears once in the moderation group, sent through the outbox.
    card = await emu.wait_for_bot_message(MOD_CHAT, f"Nouvelle idée n° {idea_id}")
    assert title in card.text and text in card.text and "Par Anne" in card.text
    assert card.button_texts() == ["✅ Approuver", "❌ Rejeter"]
    [delivery] = await db_rows(url, Delivery, Delivery.chat_id == MOD_CHAT)
    assert delivery.topic == "moderation"
    approve = callback_data(card, "✅ Approuver")

    # 3. A member of the group who is not an administrator: an alert, nothing changes.
    refused = await carl.click("✅ Approuver", message=card, chat_id=MOD_CHAT)
    assert refused.show_alert and refused.text == "Seuls les modérateurs peuvent décider."
    assert card.edit_count == 0 and card.button_texts() == ["✅ Approuver", "❌ Rejeter"]
    assert (await db_idea(url, idea_id)).status == "pending"

    # 4. An administrator approves: the card shows who decided and when, without buttons.
    approved = await mia.click("✅ Approuver", message=card, chat_id=MOD_CHAT)
    assert (approved.text or "").startswith("✅ Approuvée par Mia le "), approved
    await emu.wait_for(
        lambda: "Approuvée par Mia le" in card.text and not card.buttons,
        what="the card edited with the decision",
    )
    assert card.edit_count == 1 and title in card.text
    stored = await db_idea(url, idea_id)
    assert (stored.status, stored.decided_by, stored.decided_by_name) == ("approved", 601, "Mia")

    # 5. The author is told, with the link to share.
    told = await anne.wait_for_message("a été approuvée")
    assert f"{BOT_LINK}{idea_id}" in told.text and title in told.text

    # 6. Bram (nl) opens the link, supports the idea and comments.
    await bram.send(f"/start idea_{idea_id}")
    screen = await bram.wait_for_message(title)
    assert text in screen.text
    supported = await bram.click(t("👍 Soutenir", "nl"))
    assert supported.text == t("Merci pour votre soutien !", "nl")
    await wait_button(bram, t("👎 Retirer mon soutien", "nl"))
    assert [s.member_id for s in await db_rows(url, Support)] == [bram.id]
    assert (await db_idea(url, idea_id)).supports == 1
    await bram.click(t("💬 Commenter", "nl"))
    await bram.wait_for_message(
        t("💬 Écrivez votre commentaire ({max} caractères au plus).", "nl").format(max=1000)
    )
    comment = "Goed idee, ik help graag mee."
    await bram.send(comment)
    await bram.wait_for_message(t("💬 Commentaire publié.", "nl"))
    shown = await bram.wait_for_message(comment)
    assert "Bram" in shown.text  # the comment appears at once on the idea's screen
    [stored_comment] = await db_rows(url, Comment)
    assert (stored_comment.idea_id, stored_comment.author_id) == (idea_id, bram.id)

    # 7. The comment is posted to the moderation group (the first of a batch leaves at once),
    # with a Hide button naming it.
    comment_card = await emu.wait_for_bot_message(MOD_CHAT, comment)
    hide = f"🙈 Masquer n° {stored_comment.id}"
    assert comment_card.button_texts() == [hide]
    assert f"idée n° {idea_id}" in comment_card.text

    # 8. The author of the idea is notified of the comment.
    note = await anne.wait_for_message(
        TR.ngettext(
            "💬 {n} nouveau commentaire sur votre idée « {title} ».",
            "💬 {n} nouveaux commentaires sur votre idée « {title} ».",
            1,
            locale="fr",
        ).format(n=1, title=title)
    )
    assert f"{BOT_LINK}{idea_id}" in note.text

    # 9. A second moderator presses Approve on the card as first shown: told who decided.
    late = await press_stale_button(emu, noe, card, "✅ Approuver", approve)
    assert late.show_alert
    assert (late.text or "").startswith("Déjà décidé : ✅ Approuvée par Mia le "), late
    stored = await db_idea(url, idea_id)
    assert (stored.status, stored.decided_by) == ("approved", 601)
    assert card.edit_count == 1

    # Hide on the comment card: refused to a plain member, done by a moderator.
    refused = await carl.click(hide, message=comment_card, chat_id=MOD_CHAT)
    assert refused.show_alert and refused.text == "Seuls les modérateurs peuvent décider."
    assert comment_card.edit_count == 0
    hidden = await mia.click(hide, message=comment_card, chat_id=MOD_CHAT)
    assert hidden.text == "Commentaire masqué."
    await emu.wait_for(
        lambda: (
            f"n° {stored_comment.id} masqué par Mia" in comment_card.text
            and not comment_card.buttons
        ),
        what="the comment card edited",
    )
    [stored_comment] = await db_rows(url, Comment)
    assert stored_comment.hidden and stored_comment.hidden_by_name == "Mia"

    # 10. Bram submits an idea; Noé rejects it with a reason; Bram is told in Dutch.
    nuisances = consultation.phases[2].projects[2]
    assert nuisances.id == "nuisances"
    title2 = "Meer straatverlichting 's nachts"
    text2 = "Betere verlichting in de steegjes rond het station."
    idea2, _answer = await submit_idea(bram, "nl", nuisances.title["nl"], title2, text2)
    card2 = await emu.wait_for_bot_message(MOD_CHAT, f"Nouvelle idée n° {idea2}")
    asked = await noe.click("❌ Rejeter", message=card2, chat_id=MOD_CHAT)
    assert asked.text == "Choisissez la raison du rejet."
    await emu.wait_for(lambda: "Doublon" in card2.button_texts(), what="the reasons")
    assert card2.button_texts() == [
        "Hors sujet",
        "Doublon",
        "Propos offensants",
        "Données personnelles",
        "Autre raison",
        "◀️ Retour",
    ]
    rejected = await noe.click("Doublon", message=card2, chat_id=MOD_CHAT)
    assert (rejected.text or "").startswith("❌ Rejetée par Noé le "), rejected
    await emu.wait_for(
        lambda: "Rejetée par Noé le" in card2.text and "(Doublon)" in card2.text,
        what="the card edited with the rejection",
    )
    assert not card2.buttons
    stored2 = await db_idea(url, idea2)
    assert (stored2.status, stored2.reject_reason, stored2.decided_by) == (
        "rejected",
        "duplicate",
        602,
    )
    verdict = await bram.wait_for_message(
        t(
            "❌ Votre idée « {title} » n’a pas été retenue par les modérateurs. Raison : {reason}.",
            "nl",
        ).format(title=title2, reason=t("Doublon", "nl"))
    )
    assert "Raison" not in verdict.text and "Doublon" not in verdict.text  # Dutch, not French

    # Each card was posted exactly once: two ideas and one comment, nothing else.
    assert card_count(emu, f"Nouvelle idée n° {idea_id}") == 1
    assert card_count(emu, f"Nouvelle idée n° {idea2}") == 1
    assert len(emu.bot_messages(MOD_CHAT)) == 3
    cards = await db_rows(url, Delivery, Delivery.chat_id == MOD_CHAT)
    assert sorted(d.message_id for d in cards) == sorted(
        e.message_id for e in emu.bot_messages(MOD_CHAT)
    )
    assert {d.status for d in cards} == {"sent"}

    if os.environ.get("E2E_TRANSCRIPT"):
        print(f"\n===== moderation group {MOD_CHAT} =====\n{emu.render_transcript(MOD_CHAT)}")
        print(f"\n===== {anne.first_name} (author) =====\n{emu.render_transcript(anne.id)}")
