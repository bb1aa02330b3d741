"""Issue 8 end to end: a member erases her data after submitting an idea, comes back and
submits another; the moderator's press on the OLD card can never approve the new idea."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.consultation import load_consultation
from storage.models import Idea, Member
from tests.e2e.conftest import E2E, wait_button
from tests.e2e.test_ideas_e2e import (
    MOD_CHAT,
    callback_data,
    db_idea,
    db_rows,
    ideas_now,
    press_stale_button,
    submit_idea,
    t,
)


async def test_forget_then_resubmit_and_press_the_old_card(e2e: E2E) -> None:
    path = e2e.consultation(ideas_now(datetime.now(UTC)))
    inclusion = load_consultation(path).phases[2].projects[0].title["fr"]
    emu = e2e.emulator
    anne = emu.add_user(1001, "Anne", "fr")
    mia = emu.add_user(601, "Mia", "fr")
    emu.add_group(MOD_CHAT, "Modération", admins=[mia.id])
    bot = e2e.bot(path, MODERATION_CHAT_ID=str(MOD_CHAT))
    await anne.send("/start")
    await bot.start()
    url = e2e.database_url

    old_id, _ = await submit_idea(
        anne, "fr", inclusion, "Des bancs", "Un texte anodin.", started=True
    )
    old_card = await emu.wait_for_bot_message(MOD_CHAT, f"Nouvelle idée n° {old_id}")
    approve_old = callback_data(old_card, "✅ Approuver")

    # /forget: the card already in the group is edited; her idea keeps no text.
    await anne.send("/forget")
    await wait_button(anne, "🗑 Oui, tout effacer")
    await anne.click("🗑 Oui, tout effacer")
    erased = t("🗑 Contenu effacé à la demande de son auteur.", "fr")
    await emu.wait_for(
        lambda: old_card.text == erased and not old_card.buttons, what="the old card edited"
    )
    assert (await db_idea(url, old_id)).text == ""
    assert await db_rows(url, Member, Member.id == anne.id) == []

    # She comes back and submits another idea: a new id, and its own card. (The menu she had
    # before /forget still shows its buttons: wait for the one this /start brings.)
    before = len(anne.transcript())
    await anne.send("/start")
    ideas = t("💡 Idées", "fr")
    await emu.wait_for(
        lambda: any(
            e.direction == "bot" and any(ideas in b for row in e.buttons for b in row)
            for e in anne.transcript()[before:]
        ),
        what="the menu after /start",
    )
    new_id, _ = await submit_idea(anne, "fr", inclusion, "Autre chose", "Jamais vu.", started=True)
    assert new_id != old_id
    new_card = await emu.wait_for_bot_message(MOD_CHAT, f"Nouvelle idée n° {new_id}")
    assert "Jamais vu." in new_card.text

    # Mia's app still shows the old card's buttons: her press is refused, the new idea waits.
    answer = await press_stale_button(emu, mia, old_card, "✅ Approuver", approve_old)
    assert answer.show_alert and "Retirée par son auteur" in (answer.text or ""), answer
    assert (await db_idea(url, new_id)).status == "pending"
    [new] = await db_rows(url, Idea, Idea.id == new_id)
    assert new.decided_by is None
