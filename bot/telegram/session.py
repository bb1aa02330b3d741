"""Bot API requests sent as JSON when they carry no file.

aiogram sends every request as a form: each nested value (a keyboard) dumped to JSON, then
the whole form percent-encoded. A survey screen (a long text with accents and emoji, a
keyboard) took 0.13 ms of CPU to encode that way and 0.05 ms as one JSON body, at every tap
(the load benchmark's profile: `urllib.parse.quote_from_bytes` and aiohttp's form code).
The Bot API takes `application/json` for any method without an upload; uploads (a chart)
stay multipart. aiogram posts whatever `build_form_data` returns, so only that changes.

JSON both ways with orjson (`json_session`): the stdlib's encoder and decoder were 6.6 % of the
bot's samples under a 50-member crowd (every request, every answer, every getUpdates).

A message the bot sends or edits comes back whole, its keyboard too, and aiogram validates it
into models: 13 % of the bot's samples at 50 members were that validation, mostly the keyboard's
buttons (each a model with its private attributes). Nothing reads back the keyboard it has just
sent — aiogram-dialog keeps the id, chat, text and media of the message — so `json_session`
drops `reply_markup` from a message result before aiogram sees it: 126-140 µs -> 48 µs to
validate an edited survey screen. An update keeps the keyboard of its callback's message
(a moderator's card is read from it), unless the button is a dialog's: aiogram-dialog reads
its state from the callback data, never from the keyboard, and a survey question's keyboard
was three quarters of the time to validate the tap (103 -> 41 µs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiogram.client.session.aiohttp import AiohttpSession
from aiohttp import BytesPayload, FormData

from bot.telegram.filters import is_dialog_data

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod


class JsonSession(AiohttpSession):
    def json_body(self, bot: Bot, method: TelegramMethod[Any]) -> dict[str, Any] | None:
        """The method's parameters as one JSON object, or None when it uploads a file."""
        files: dict[str, Any] = {}
        body = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            # As the form does: no parameter for None or an empty string.
            if prepared is None or prepared == "":
                continue
            body[key] = prepared
        return None if files else body

    def build_form_data(  # type: ignore[override]
        self, bot: Bot, method: TelegramMethod[Any]
    ) -> FormData | BytesPayload:
        body = self.json_body(bot, method)
        if body is None:
            return super().build_form_data(bot, method)
        return BytesPayload(orjson.dumps(body), content_type="application/json")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _lean_update(update: Any) -> None:
    """A dialog's callback without the keyboard of its message."""
    query = update.get("callback_query") if isinstance(update, dict) else None
    if isinstance(query, dict) and is_dialog_data(str(query.get("data") or "")):
        message = query.get("message")
        if isinstance(message, dict):
            message.pop("reply_markup", None)


def lean_loads(content: str | bytes) -> Any:
    """A Bot API answer, or an update posted to the webhook: a message result without the
    keyboard it was sent with, a dialog's callback without the keyboard of its message."""
    answer = orjson.loads(content)
    if isinstance(answer, dict) and "update_id" in answer:
        _lean_update(answer)
        return answer
    result = answer.get("result") if isinstance(answer, dict) else None
    if isinstance(result, dict) and "message_id" in result:
        result.pop("reply_markup", None)
    elif isinstance(result, list):
        for update in result:
            _lean_update(update)
    return answer


def json_session(**kwargs: Any) -> JsonSession:
    """The bot's session: JSON bodies, read and written by orjson; results lean."""
    return JsonSession(json_loads=lean_loads, json_dumps=_dumps, **kwargs)
