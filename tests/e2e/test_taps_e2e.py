"""A member's spinner stops on the new screen, never on the old one; a tap repeated on the
menu before its screen changed draws the survey again instead of a new menu."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from playground import SimUser
from tests.e2e.conftest import E2E, open_survey, wait_button
from tests.e2e.test_flood_e2e import Taps
from tests.e2e.test_survey_e2e import fresh_redis, t
from tests.support import REDIS_URL, survey_now


def _callback_data(user: SimUser, text: str) -> tuple[Any, str]:
    entry = user.last_bot_message()
    assert entry is not None
    rows = (entry.markup or {}).get("inline_keyboard", [])
    data = next(b["callback_data"] for row in rows for b in row if text in b["text"])
    return entry, data


async def _at_the_menu(e2e: E2E, user_id: int, name: str, lang: str) -> SimUser:
    """The bot started during the survey, and a member who sent /start and sees the menu."""
    bot = e2e.bot(e2e.consultation(survey_now(datetime.now(UTC))))
    await bot.start()
    user = e2e.emulator.add_user(user_id, name, language_code=lang)
    await user.send("/start")
    await wait_button(user, "📝")
    return user


def _bot_messages(user: SimUser) -> int:
    return len([e for e in user.transcript() if e.direction == "bot"])


async def test_the_answer_waits_for_the_new_screen(e2e: E2E) -> None:
    emu = e2e.emulator
    user = await _at_the_menu(e2e, 901, "Ines", "fr")
    await open_survey(user, "fr", timeout=15)
    await wait_button(user, "▶️")
    entry, data = _callback_data(user, "Inclusion des personnes")
    # The new screen is slow to come (held in the emulator) for longer than the old safety
    # net's 0.75 s: the spinner must go on until it comes.
    edit = emu.hold(method="editMessageText", chat_id=user.id)
    taps = Taps(emu, "slow")
    taps.tap(user, entry, data)
    await emu.wait_for(lambda: edit.held >= 1, timeout=15, what="the new screen to be sent")
    seen_at_answer: list[bool] = []
    click = emu._clicks["slow1"]
    click.future.add_done_callback(
        lambda _: seen_at_answer.append("✅ Inclusion" in str(user.last_bot_message().buttons))  # type: ignore[union-attr]
    )
    # Nothing to wait for but time: an early answer would come within the old 0.75 s.
    done, _ = await asyncio.wait([click.future], timeout=2.0)
    assert not done, "the query was answered while its screen was still on its way"
    edit.release()
    await emu.wait_for(lambda: click.future.done(), timeout=15, what="the answer")
    assert seen_at_answer == [True]
    assert click.answer is not None and click.answer.text is None


async def test_a_menu_button_tapped_twice_draws_the_survey_again(e2e: E2E) -> None:
    emu = e2e.emulator
    user = await _at_the_menu(e2e, 902, "Jan", "nl")
    menu, data = _callback_data(user, "📝")
    taps = Taps(emu, "twice")
    taps.tap(user, menu, data)
    taps.tap(user, menu, data)  # before the screen changed
    await emu.wait_for(lambda: len(taps.answered) == 2, timeout=15, what="both answers")
    await wait_button(user, "🤐")  # the survey's first screen: the commune, asked once
    sent = _bot_messages(user)
    screen = user.last_bot_message()
    assert screen is not None and screen.message_id == menu.message_id  # edited in place
    assert "🤐" in str(screen.buttons)
    # No new menu, no "this button is no longer active": the member sees the survey.
    assert _bot_messages(user) == sent
    answers = [emu._clicks[q].answer for q in taps.sent]
    assert all(a is not None and a.text is None for a in answers), answers


@pytest.mark.parametrize(("typed", "choice"), [(None, "🤐"), ("5000", "Namur")])
async def test_a_late_second_tap_on_the_commune_draws_the_question_again(
    e2e: E2E, typed: str | None, choice: str
) -> None:
    """The commune screen turns into the first question in the same message, its dialog
    closed: the thumb's second tap on the commune, arriving after the first was handled,
    draws the question again. It used to send the stale-button menu below, and the member
    had to reopen the survey (bench/survey_load.py: every double-tapping member)."""
    emu = e2e.emulator
    user = await _at_the_menu(e2e, 903 if typed is None else 904, "Lea", "fr")
    await user.click("📝 Répondre au sondage")
    await wait_button(user, "🤐")
    if typed is not None:
        await user.send(typed)
        await wait_button(user, choice)
    communes, data = _callback_data(user, choice)
    taps = Taps(emu, f"commune{typed}")
    taps.tap(user, communes, data)
    await wait_button(user, "▶️")  # the first question, in the commune's message
    question = user.last_bot_message()
    assert question is not None and question.message_id == communes.message_id
    await emu.wait_for(lambda: len(taps.answered) == 1, timeout=15, what="the first answer")
    sent = _bot_messages(user)
    taps.tap(user, communes, data)  # the second tap, late, on the screen the member saw
    await emu.wait_for(lambda: len(taps.answered) == 2, timeout=15, what="the second answer")
    screen = user.last_bot_message()
    assert screen is not None and screen.message_id == question.message_id
    assert screen.text == question.text and screen.buttons == question.buttons
    # No menu below the question, no "this button is no longer active".
    assert _bot_messages(user) == sent
    late = emu._clicks[taps.sent[1]].answer
    assert late is not None and late.text is None, late


async def test_a_late_tap_on_an_older_message_leaves_the_open_screen_as_it_is(e2e: E2E) -> None:
    """📝 tapped twice; the second tap comes once the commune list is already below (the
    member typed a postal code): the member is told, and the list stays open, no menu sent
    below it that would close it under the member's next tap (bench/survey_load.py)."""
    emu = e2e.emulator
    user = await _at_the_menu(e2e, 905, "Noor", "nl")
    menu, data = _callback_data(user, "📝")
    taps = Taps(emu, "older")
    taps.tap(user, menu, data)
    await wait_button(user, "🤐")
    await emu.wait_for(lambda: len(taps.answered) == 1, timeout=15, what="the first answer")
    await user.send("5000")
    await wait_button(user, "Namen")
    communes = user.last_bot_message()
    assert communes is not None and communes.message_id != menu.message_id
    sent = _bot_messages(user)
    taps.tap(user, menu, data)  # the second 📝, late
    await emu.wait_for(lambda: len(taps.answered) == 2, timeout=15, what="the second answer")
    late = emu._clicks[taps.sent[1]].answer
    assert late is not None and late.text == t("Ce bouton n’est plus actif.", "nl")
    assert _bot_messages(user) == sent
    assert user.last_bot_message() == communes  # untouched, its buttons live
    await user.click("Namen")
    await wait_button(user, "▶️")  # the first question


async def test_screens_waiting_at_telegram_hold_no_database_connection(
    e2e: E2E, request: pytest.FixtureRequest
) -> None:
    """A slow Bot API must not starve the database: an update waiting for Telegram holds no
    pooled connection, so other members are served while its screen is on the way."""
    emu = e2e.emulator
    e2e.database_url = request.getfixturevalue("postgres_url")
    await fresh_redis(REDIS_URL)
    # 8 connections: 2 for the outbox, 2 for the taps' statements, 4 for the updates' sessions.
    bot = e2e.bot(
        e2e.consultation(survey_now(datetime.now(UTC))),
        REDIS_URL=REDIS_URL,
        DATABASE_MAX_CONNECTIONS="8",
        DATABASE_POOL_TIMEOUT="2",
    )
    await bot.start()
    slow = [emu.add_user(920 + i, f"Slow{i}", language_code="fr") for i in range(8)]
    for user in slow:
        await user.send("/start")
    for user in slow:
        await wait_button(user, "📝")
    # Twice as many members as the sessions' connections tap "📝": their next screens wait
    # at Telegram, their updates still under way.
    held = emu.hold(method="editMessageText")
    for user in slow:
        menu, data = _callback_data(user, "📝")
        Taps(emu, f"slow{user.id}").tap(user, menu, data)
    await emu.wait_for(lambda: held.held >= len(slow), timeout=20, what="every screen held")
    # Meanwhile a new member is welcomed, longer after than the pool's time-out.
    late = emu.add_user(930, "Late", language_code="nl")
    await late.send("/start")
    await wait_button(late, "📝", timeout=10)
    held.release()
    for user in slow:
        await wait_button(user, "🤐", timeout=20)  # the survey's first screen: the commune
    logs = bot.log_path.read_text()
    assert "no free PostgreSQL connection" not in logs
