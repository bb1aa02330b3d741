"""The Bot API failing for a while, with members tapping through it.

Every call the bot makes is refused with 502 (getUpdates included). Half the members tap
"answer the survey" as the outage begins: the long poll the bot was waiting in brings those
taps in, and the bot handles them while every answer and edit is refused, so those members
see nothing and tap again once the API is back. The other half tap while the bot's polls are
refused: their taps wait at Telegram and are answered once it is back. The bot keeps running
throughout and backs off.

OUTAGE_POLLS=30 (about two and a half minutes of backing off) tries a longer outage by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime

from tests.e2e.conftest import E2E, wait_button
from tests.e2e.test_survey_e2e import t
from tests.support import survey_now

MEMBERS = 20
REFUSED_POLLS = int(os.environ.get("OUTAGE_POLLS", "4"))


async def test_members_tapping_while_the_bot_api_fails_get_the_survey_after(e2e: E2E) -> None:
    path = e2e.consultation(survey_now(datetime.now(UTC)))
    bot = e2e.bot(path)
    await bot.start()
    emu = e2e.emulator
    members = [emu.add_user(2000 + i, f"M{i}", "fr") for i in range(MEMBERS)]
    survey = t("📝 Répondre au sondage", "fr")
    for member in members:
        await member.send("/start")
    for member in members:
        await wait_button(member, survey, timeout=30)

    # The bot waits in a long poll, as it does between taps: the outage begins.
    await emu.wait_for(lambda: emu.long_polling, timeout=30, what="a long poll")
    outage = emu.inject_fault(None, code=502, times=10**9, description="Bad Gateway")
    early, late = members[: MEMBERS // 2], members[MEMBERS // 2 :]
    # The waiting poll brings the early taps in; the bot handles them, every answer refused.
    taps = {m.id: asyncio.create_task(m.click(survey, timeout=600)) for m in early}
    await emu.wait_for(
        lambda: any(f.method == "getUpdates" for f in emu.injected_failures),
        timeout=30,
        what="a refused poll",
    )
    # The late ones stay queued while the bot's polls are refused.
    taps |= {m.id: asyncio.create_task(m.click(survey, timeout=600)) for m in late}
    await emu.wait_for(
        lambda: sum(f.method == "getUpdates" for f in emu.injected_failures) >= REFUSED_POLLS,
        timeout=10 * REFUSED_POLLS,
        what="the bot polling through the outage",
    )
    assert not bot.exited()
    assert not any(tap.done() for tap in taps.values())  # no answer got through
    fetched = {
        update["callback_query"]["from"]["id"]
        for call in emu.calls_to("getUpdates")
        if call.response.get("ok")
        for update in call.response["result"]
        if "callback_query" in update
    }
    assert fetched == {m.id for m in early}
    emu.faults.remove(outage)

    # The survey's first screen: the commune, asked once before the first question.
    first = t("📍 <b>Dans quelle commune habitez-vous ?</b>", "fr")[2:].replace("<b>", "")[:30]
    for member in early:
        # It saw nothing happen and taps again.
        taps[member.id].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await taps[member.id]
        await member.click(survey, timeout=30)
        await member.wait_for_message(first, timeout=30)
    for member in late:
        await asyncio.wait_for(taps[member.id], timeout=30)
        await member.wait_for_message(first, timeout=30)
    assert not bot.exited()
