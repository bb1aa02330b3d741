"""Taps say what they set, on the screen they were drawn on (bot/survey/screen.py): a repeated
or late tap never undoes a choice nor skips a question, a forged one is answered politely, and
a query is answered after its screen is drawn (bot/telegram/middlewares/answer_once.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.methods import AnswerCallbackQuery
from aiogram.types import CallbackQuery, Message, Update

from bot.survey.service import SurveyService
from bot.telegram.middlewares.answer_once import AnswerEveryCallback, CallbackAnswers
from tests import test_dialogs
from tests.test_dialogs import Harness, button, start_survey

harness = pytest.fixture(test_dialogs.harness.__wrapped__)  # the dialog tests' harness

INCLUSION = "Inclusion des personnes"
LIVING = "Vivre-ensemble sécure"


def keyboard(message: Message) -> str:
    return str(message.reply_markup)


async def test_two_taps_of_one_option_50_ms_apart_leave_it_selected(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    seen = h.last()
    # The first tap's answer is slow to store, as under a crowd: the second tap, on the same
    # screen, arrives while the first is still at work.
    stored = asyncio.Event()
    save = SurveyService.save

    async def slow_save(self: SurveyService, *args: Any, **kwargs: Any) -> Any:
        await stored.wait()
        return await save(self, *args, **kwargs)

    monkeypatch.setattr(SurveyService, "save", slow_save)
    first = asyncio.create_task(client.click(seen, button(INCLUSION)))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(client.click(seen, button(INCLUSION)))
    await asyncio.sleep(0.05)
    stored.set()
    await asyncio.gather(first, second)
    assert await h.answers(7) == {"challenges": ("inclusion",)}
    assert f"✅ {INCLUSION}" in keyboard(h.last())
    # And when the bot is quick, the second tap comes after the first's new screen.
    await client.click(seen, button(INCLUSION))
    assert await h.answers(7) == {"challenges": ("inclusion",)}
    assert f"✅ {INCLUSION}" in keyboard(h.last())
    assert "Choisissez" not in " ".join(h.bot.alerts())


async def test_a_tap_on_a_screen_two_edits_old_changes_nothing_stored(harness: Harness) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    oldest = h.last()  # Inclusion unticked: its button selects it
    await h.click(client, INCLUSION)  # edit 1: ticked
    await h.click(client, INCLUSION)  # edit 2: unticked again, by the member
    assert await h.answers(7) == {}
    current = h.last()
    await client.click(oldest, button(INCLUSION))  # "select", from two edits ago
    assert await h.answers(7) == {}
    # The current screen is drawn again, unchanged.
    assert h.last().text == current.text and keyboard(h.last()) == keyboard(current)
    assert f"▫️ {INCLUSION}" in keyboard(h.last())


async def test_a_tap_on_another_option_of_the_screen_still_counts(harness: Harness) -> None:
    """Two options tapped before the screen caught up with the first: both are ticked
    (nothing since contradicts the second)."""
    h = harness
    client = h.client()
    await start_survey(h, client)
    seen = h.last()
    await client.click(seen, button(INCLUSION))
    await client.click(seen, button(LIVING))
    assert await h.answers(7) == {"challenges": ("inclusion", "living_together")}


async def test_a_repeated_next_does_not_skip_a_question(harness: Harness) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    alerts = len(h.bot.alerts())  # the commune declined on the way in says "Entendu…"
    await h.click(client, INCLUSION)
    first = h.last()
    await client.click(first, button("Suivant"))
    second = h.last()
    assert (second.text or "").startswith("Question 2 / ")
    await client.click(first, button("Suivant"))  # tapped twice on question 1
    await client.click(first, button("Retour"))  # and a late ◀️ from it
    assert (h.last().text or "").startswith("Question 2 / ")
    assert keyboard(h.last()) == keyboard(second)
    assert h.bot.alerts()[alerts:] == []
    assert await h.answers(7) == {"challenges": ("inclusion",)}


async def test_a_late_single_choice_tap_does_not_answer_the_next_question(
    harness: Harness,
) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    c = h.app.consultation
    single = next(q for q in c.questions if q.kind == "single")
    visited = 0
    for q in c.questions[: c.questions.index(single)]:
        if c.text(q.text, "fr") not in (h.last().text or ""):
            continue  # a conditional question the first option does not lead to
        await h.click(client, c.text(q.options[0].label, "fr"))
        await h.click(client, "Suivant")
        visited += 1
    seen = h.last()
    label = c.text(single.options[1].label, "fr")
    await client.click(seen, button(label))
    after = h.last()
    await client.click(seen, button(label))  # the same tap again, late
    assert h.last().text == after.text and keyboard(h.last()) == keyboard(after)
    answers = await h.answers(7)
    assert answers[single.id] == (single.options[1].id,)
    assert len(answers) == visited + 1


async def test_forged_callback_data_gets_a_polite_answer(harness: Harness) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    question = h.last()
    data = question.reply_markup.inline_keyboard[0][0].callback_data  # type: ignore[union-attr]
    assert data is not None and len(data.encode()) <= 64
    intent = data.split("\x1d")[0]
    forged = [
        f"{intent}\x1do:nope",
        f"{intent}\x1do:1+",
        f"{intent}\x1do:1*inclusion",
        f"{intent}\x1do:1+no_such_option",
        f"{intent}\x1do:" + "9" * 40 + "+inclusion",
        f"{intent}\x1do:999999999+inclusion",  # a stamp from the future: drawn again
        f"{intent}\x1dnext:abc",
        f"{intent}\x1dnext:",
        f"{intent}\x1dback:-1",
        f"{intent}\x1dok:1",
    ]
    for i, forgery in enumerate(forged):
        await client.dp.feed_update(
            h.bot,
            Update(
                update_id=1000 + i,
                callback_query=CallbackQuery(
                    id=f"forged{i}",
                    from_user=client.user,
                    chat_instance="-",
                    message=question,
                    data=forgery,
                ),
            ),
        )
    answered = {c.callback_query_id for c in h.bot.calls if isinstance(c, AnswerCallbackQuery)}
    answered |= h.messages.answered_callbacks
    assert answered >= {f"forged{i}" for i in range(len(forged))}
    alerts = h.bot.alerts()
    assert "Cette réponse n’existe pas ou plus." in alerts
    assert not any("erreur" in a for a in alerts)
    assert await h.answers(7) == {}
    assert (h.last().text or "").startswith("Question 1 / ")
    # The real buttons still work.
    await h.click(client, INCLUSION)
    assert await h.answers(7) == {"challenges": ("inclusion",)}


async def test_a_query_is_answered_after_its_screen_is_drawn(harness: Harness) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    order: list[str] = []
    show, answer = h.messages.show_message, h.messages.answer_callback

    async def showing(*args: Any, **kwargs: Any) -> Any:
        order.append("screen")
        return await show(*args, **kwargs)

    async def answering(*args: Any, **kwargs: Any) -> Any:
        order.append("answer")
        return await answer(*args, **kwargs)

    h.messages.show_message = showing  # type: ignore[method-assign]
    h.messages.answer_callback = answering  # type: ignore[method-assign]
    await h.click(client, INCLUSION)
    await h.click(client, "Suivant")
    assert order == ["screen", "answer", "screen", "answer"]


class AnsweringBot:
    def __init__(self) -> None:
        self.answers: list[tuple[str, str | None]] = []

    async def answer_callback_query(self, query_id: str, text: str | None = None) -> bool:
        self.answers.append((query_id, text))
        return True


def _query_update(query_id: str) -> Update:
    from aiogram.types import User

    user = User(id=7, is_bot=False, first_name="Anne", language_code="fr")
    return Update(
        update_id=1,
        callback_query=CallbackQuery(id=query_id, from_user=user, chat_instance="-", data="x"),
    )


async def test_the_safety_net_leaves_a_failed_tap_to_the_error_handlers(
    harness: Harness,
) -> None:
    """A handler that fails: the error handlers draw the screen again and answer (an answer
    here first would stop the spinner on the old screen); one no handler took: answered now."""
    h = harness
    net = AnswerEveryCallback(h.app, h.services.translator, CallbackAnswers(), deadline=60)
    bot = AnsweringBot()

    async def failing(event: Any, data: dict[str, Any]) -> Any:
        raise RuntimeError("boom")

    async def nobody(event: Any, data: dict[str, Any]) -> Any:
        return UNHANDLED

    with pytest.raises(RuntimeError):
        await net(failing, _query_update("q1"), {"bot": bot})
    assert bot.answers == []
    await net(nobody, _query_update("q2"), {"bot": bot})
    assert bot.answers == [("q2", "Ce bouton n’est plus actif.")]
    assert type(h.app.settings).model_fields["callback_answer_deadline"].default == 10.0


class RoutedBot:
    """A bot whose requests go through AnswerCallbackOnce, recording what reaches Telegram."""

    def __init__(self, answers: CallbackAnswers, log: list[str]) -> None:
        from bot.telegram.middlewares.answer_once import AnswerCallbackOnce

        self.once = AnswerCallbackOnce(answers)
        self.log = log
        self.sent = asyncio.Event()

    async def _send(self, bot: Any, method: Any) -> Any:
        self.log.append(f"sent {method.callback_query_id} {method.text}")
        self.sent.set()
        return True

    async def __call__(self, method: Any) -> Any:
        return await self.once(self._send, self, method)  # type: ignore[arg-type]

    async def answer_callback_query(self, query_id: str, text: str | None = None) -> Any:
        return await self(AnswerCallbackQuery(callback_query_id=query_id, text=text))


async def test_a_query_is_answered_once_the_members_turn_is_saved(harness: Harness) -> None:
    """aiogram-dialog answers after drawing, but the dialog's new state is written after its
    handler (and, with Redis, when the member's lock is let go): a bot killed in between
    showed the next question while it remembered the last one, and the member's next tap
    landed on the wrong question. The answer now leaves once the turn is over."""
    h = harness
    answers = CallbackAnswers()
    log: list[str] = []
    bot = RoutedBot(answers, log)
    net = AnswerEveryCallback(h.app, h.services.translator, answers, deadline=60)

    async def turn(event: Any, data: dict[str, Any]) -> Any:
        await bot.answer_callback_query("q1", "✅")  # the dialog, after drawing
        await bot.answer_callback_query("q1")  # a second answer: dropped
        log.append("state saved")  # the context saver, the lock's release
        return None

    await net(turn, _query_update("q1"), {"bot": bot})
    assert log == ["state saved", "sent q1 ✅"]
    assert answers.answered("q1")


async def test_a_long_turn_still_answers_within_a_second(harness: Harness) -> None:
    """A handler that answers, then works on (a report, an export): the member's toast does not
    wait for the end of the work."""
    h = harness
    answers = CallbackAnswers()
    log: list[str] = []
    bot = RoutedBot(answers, log)
    net = AnswerEveryCallback(h.app, h.services.translator, answers, deadline=60, hold=0.05)
    released = asyncio.Event()

    async def turn(event: Any, data: dict[str, Any]) -> Any:
        await bot.answer_callback_query("q2", "⏳")
        await bot.sent.wait()  # the answer leaves during the work, not after it
        released.set()
        log.append("work done")
        return None

    await asyncio.wait_for(net(turn, _query_update("q2"), {"bot": bot}), timeout=5)
    assert released.is_set()
    assert log == ["sent q2 ⏳", "work done"]
