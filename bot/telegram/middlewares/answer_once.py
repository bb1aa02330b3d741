"""Every callback query is answered exactly once, whatever path handles it.

Two halves share one `CallbackAnswers` record, built in app.py:
- `AnswerCallbackOnce` (a request middleware of the bot's session) lets the first
  answerCallbackQuery of a query through and drops the later ones: our handlers answer with an
  alert, then aiogram-dialog answers again after rendering, and Telegram rejects the second.
- `AnswerEveryCallback` (the outermost of our update middlewares) answers a query that
  nothing answered: at once when no handler took it (a forged or unknown button), and when
  Telegram would soon give up on it (`deadline`, seconds) if its handler is still busy.

The answer stops the member's spinner, so it must come with or after the screen's change:
aiogram-dialog answers after drawing the new screen (`Dialog._callback_handler`: `show()`,
then `answer_callback()`). A spinner stopped on an unchanged screen makes people tap again.
So the safety net does not answer early: a query still unanswered after `deadline` (Telegram
drops a query's answer some 15 s after the tap) is answered empty so the spinner stops at
all. A handler that fails leaves the answer to the error handlers, which draw the screen
again first (bot/ui/errors.py); the safety net stays armed behind them.

And after the member's turn is saved: aiogram-dialog answers before its context saver writes
the new screen's state, and with Redis that write goes with the lock's release. A bot killed
in between showed the next question while remembering the last one (the member's next tap
then landed on the wrong question: tests/e2e/test_survey_e2e.py under load). The first answer
of a query is held while its update runs, and leaves when the update is over, or after `hold`
seconds when a handler works on after answering (a report, an export).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.methods import AnswerCallbackQuery, Response
from aiogram.types import TelegramObject, Update

from bot.i18n import pick_language
from bot.telegram.middlewares import Handler

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod

    from bot.context import AppContext
    from bot.i18n import Translator

log = logging.getLogger(__name__)
REMEMBERED = 10_000
_DONE = Response[bool](ok=True, result=True)


class CallbackAnswers:
    """The ids of the callback queries answered lately (bounded)."""

    def __init__(self) -> None:
        self.ids: OrderedDict[str, None] = OrderedDict()
        # Queries whose update is running -> their first answer, held until it is over.
        self.held: dict[str, AnswerCallbackQuery | None] = {}

    def hold(self, query_id: str) -> None:
        self.held[query_id] = None

    def defer(self, method: AnswerCallbackQuery) -> bool:
        """True when the query's update is running: its first answer is kept for later, any
        other dropped."""
        if method.callback_query_id not in self.held:
            return False
        if self.held[method.callback_query_id] is None:
            self.held[method.callback_query_id] = method
        return True

    def unhold(self, query_id: str) -> AnswerCallbackQuery | None:
        """The answer kept for this query, if any; later answers go straight out."""
        return self.held.pop(query_id, None)

    def claim(self, query_id: str) -> bool:
        """True for the first caller only."""
        if query_id in self.ids:
            return False
        self.ids[query_id] = None
        while len(self.ids) > REMEMBERED:
            self.ids.popitem(last=False)
        return True

    def release(self, query_id: str) -> None:
        self.ids.pop(query_id, None)

    def answered(self, query_id: str) -> bool:
        return query_id in self.ids


class AnswerCallbackOnce(BaseRequestMiddleware):
    def __init__(self, answers: CallbackAnswers) -> None:
        self.answers = answers

    async def __call__(
        self, make_request: NextRequestMiddlewareType[Any], bot: Bot, method: TelegramMethod[Any]
    ) -> Response[Any]:
        if not isinstance(method, AnswerCallbackQuery):
            return await make_request(bot, method)
        if self.answers.defer(method):  # sent by AnswerEveryCallback when the turn is over
            return _DONE
        if not self.answers.claim(method.callback_query_id):
            return _DONE
        try:
            return await make_request(bot, method)
        except TelegramBadRequest:
            raise  # too old or invalid: another try would fail the same way
        except (TimeoutError, TelegramAPIError, OSError):
            # Not answered after all: let a later answer (ours or the safety net's) through.
            self.answers.release(method.callback_query_id)
            raise


class AnswerEveryCallback(BaseMiddleware):
    def __init__(
        self,
        app: AppContext,
        translator: Translator,
        answers: CallbackAnswers,
        deadline: float = 10.0,
        hold: float = 1.0,
    ) -> None:
        self.app = app
        self.translator = translator
        self.answers = answers
        self.deadline = deadline
        self.hold = hold

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        query = event.callback_query if isinstance(event, Update) else None
        if query is None:
            return await handler(event, data)
        bot: Bot = data["bot"]
        loop = asyncio.get_running_loop()
        timer = loop.call_later(
            self.deadline, lambda: asyncio.ensure_future(self._answer(bot, query.id))
        )
        self.answers.hold(query.id)
        late = loop.call_later(
            self.hold, lambda: asyncio.ensure_future(self._release(bot, query.id))
        )
        # The error handlers run within the member's turn (inside this middleware) and answer
        # after drawing the screen again; on a failure before the turn, aiogram's outermost
        # ones do, and the timer, left armed, answers if they do not.
        try:
            result = await handler(event, data)
        finally:
            late.cancel()
            await self._release(bot, query.id)
        timer.cancel()
        if not self.answers.answered(query.id):
            text = self._unhandled_text(data, query) if result is UNHANDLED else None
            await self._answer(bot, query.id, text)
        return result

    async def _release(self, bot: Bot, query_id: str) -> None:
        method = self.answers.unhold(query_id)
        if method is not None:
            with contextlib.suppress(TelegramAPIError, OSError, asyncio.TimeoutError):
                await bot(method)

    async def _answer(self, bot: Bot, query_id: str, text: str | None = None) -> None:
        if self.answers.answered(query_id):
            return
        with contextlib.suppress(TelegramAPIError, OSError, asyncio.TimeoutError):
            await bot.answer_callback_query(query_id, text=text)

    def _unhandled_text(self, data: dict[str, Any], query: Any) -> str:
        app = self.app
        lang = data.get("lang") or pick_language([query.from_user.language_code], app.languages)
        return self.translator.gettext(
            "Ce bouton n’est plus actif.", locale=lang or app.consultation.source_language
        )
