"""A flood of taps beside forged and stale buttons: every callback query gets exactly one
answer, whatever path handles it (throttled, stale, forged, refused, dialog), and a tap whose
screen cannot be drawn is answered all the same, by the safety net at its deadline.

Nothing here is timed: the work is kept from finishing (the emulator holds every call to the
flooder's chat) until every tap is answered."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from playground import BotAPIEmulator, Click, SimUser, TranscriptEntry
from tests.e2e.conftest import E2E, open_survey, wait_button
from tests.support import survey_now


class Taps:
    """Raw callback queries, fired without waiting, each noted when the bot answers it."""

    def __init__(self, emu: BotAPIEmulator, prefix: str = "flood") -> None:
        self.emu = emu
        self.prefix = prefix
        self.sent: list[str] = []
        self.answered: set[str] = set()
        self.ids = itertools.count(1)

    def tap(self, user: SimUser, entry: TranscriptEntry, data: str) -> None:
        emu = self.emu
        query_id = f"{self.prefix}{next(self.ids)}"
        click = Click(
            query_id=query_id,
            user_id=user.id,
            chat_id=user.id,
            message_id=entry.message_id,
            button_text="?",
            callback_data=data,
            seq=emu.seq,
            future=asyncio.get_running_loop().create_future(),
        )
        click.future.add_done_callback(lambda _: self.answered.add(query_id))
        emu._clicks[query_id] = click
        self.sent.append(query_id)
        emu._enqueue(
            "callback_query",
            {
                "id": query_id,
                "from": user.as_dict(),
                "message": entry.message,
                "chat_instance": "flood",
                "data": data,
            },
        )


def _data(entry: TranscriptEntry) -> list[str]:
    rows: list[list[dict[str, Any]]] = (entry.markup or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


async def test_flood_forged_and_stale_taps_are_each_answered_once(e2e: E2E) -> None:
    emu = e2e.emulator
    path = e2e.consultation(survey_now(datetime.now(UTC)))
    # The default flood control (the harness raises it for the other tests); the safety net's
    # deadline shortened from 10 s, so that the taps held behind the flooder's screen do not
    # keep the test waiting.
    bot = e2e.bot(path, THROTTLE_BURST="8", THROTTLE_RATE="4", CALLBACK_ANSWER_DEADLINE="1")
    await bot.start()
    flooder = emu.add_user(801, "Flo", language_code="fr")
    forger = emu.add_user(802, "Fab", language_code="nl")
    stale = emu.add_user(803, "Sam", language_code="en")
    for user in (flooder, forger, stale):
        await user.send("/start")
        await open_survey(user, user.language_code or "fr", timeout=15)
        await wait_button(user, "▶️")
    question = {u.id: u.last_bot_message() for u in (flooder, forger, stale)}
    assert all(question.values())
    stale_buttons = _data(question[stale.id])  # before /start takes them off the screen
    # The stale member resets the dialogs: the question's buttons now point nowhere.
    await stale.send("/start")
    await emu.wait_for(
        lambda: len(stale.transcript()) > 0 and stale.transcript()[-1].buttons,
        timeout=15,
        what="the new menu",
    )

    taps = Taps(emu)
    flood_buttons = _data(question[flooder.id])[:3]  # three options of the first question
    forged = _data(question[forger.id])[0]
    forgeries = [
        forged.rsplit(":", 1)[0] + ":nope.nope",  # an option that does not exist
        forged[:-1] + "\x00",  # garbage at the end
        "x" * 64,  # no widget at all
        "",  # empty
        forged.replace(forged.split("\x1d")[0], "zzzzzz") if "\x1d" in forged else "aiogd:zz",
    ]
    # One of each kind first, as on a bot that has been running for a while (the first use of
    # a path pays for imports and caches).
    warm = Taps(emu, "warm")
    warm.tap(forger, question[forger.id], forgeries[0])
    warm.tap(stale, question[stale.id], stale_buttons[0])
    await emu.wait_for(lambda: len(warm.answered) == 2, timeout=15, what="the warm-up taps")
    await wait_button(stale, "📝")
    menus_before = sum(e.direction == "bot" for e in stale.transcript())
    # The flooder's screen cannot change until every tap is answered: the taps that got through
    # wait for it, and the safety net answers them at its deadline.
    work = emu.hold(chat_id=flooder.id)
    for i in range(200):
        taps.tap(flooder, question[flooder.id], flood_buttons[i % 3])
        if i % 13 == 0:  # 16 forged and 15 stale taps beside the 200: 231 in all
            taps.tap(forger, question[forger.id], forgeries[i % len(forgeries)])
        if i % 13 == 6:
            taps.tap(stale, question[stale.id], stale_buttons[i % len(stale_buttons)])
        if i % 40 == 39:
            # Five batches of 40, each taken by the bot before the next (not one getUpdates).
            await emu.wait_for(lambda: emu.long_polling, timeout=15, what="the bot to poll")
    total = len(taps.sent)
    assert total == 231

    await emu.wait_for(
        lambda: len(taps.answered) == total, timeout=60, what="an answer to every tap"
    )
    assert work.held >= 1, "no tap got through to the flooder's screen"
    work.release()
    answers = Counter(
        call.params.get("callback_query_id") for call in emu.calls_to("answerCallbackQuery")
    )
    flood_answers = {q: n for q, n in answers.items() if str(q).startswith("flood")}
    assert len(flood_answers) == total and set(flood_answers.values()) == {1}, flood_answers
    # It was a flood whatever the machine's speed (each batch brings 40 taps at once, the bucket
    # holds 8): refused politely; and the bot still works for everyone afterwards.
    texts = [c.answer.text for c in emu._clicks.values() if c.user_id == flooder.id and c.answer]
    assert any(t and "Doucement" in t for t in texts)
    # Hammering an old button brings one fresh menu, not one per tap.
    assert sum(e.direction == "bot" for e in stale.transcript()) - menus_before <= 1
    screen = forger.last_bot_message()
    assert screen is not None
    await forger.click(screen.buttons[0][0], timeout=15)
