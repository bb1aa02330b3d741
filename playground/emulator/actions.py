"""What simulated users do: write, block the bot, click inline buttons (and the bot's answers
to those clicks)."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any

from .html import utf16_len
from .model import ApiError, CallbackAnswer, Click, TranscriptEntry, _Chat, _Req, _shallow
from .transcripts import TranscriptsMixin
from .users import SimUser

_QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")


class UserActionsMixin(TranscriptsMixin):
    """The emulator side of SimUser's actions: each one queues a real update."""

    def _user_message(
        self,
        user: SimUser,
        chat_id: int,
        *,
        text: str | None = None,
        kind: str = "text",
        extra: dict[str, Any] | None = None,
        shown: str | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        chat = self._chat_or_fail(chat_id)
        if chat.type == "private":
            if chat.id != user.id:
                raise AssertionError(f"{user} cannot write in the private chat {chat.id}")
            if user.blocked:
                # writing to a blocked bot goes through "Restart", which unblocks it
                self._set_blocked(user, False)
            user.started = True
        else:
            chat.members.add(user.id)
        msg: dict[str, Any] = {
            "message_id": chat.new_message_id(),
            "from": user.as_dict(),
            "chat": chat.obj,
            "date": int(time.time()),
        }
        if reply_to is not None:
            target = chat.messages.get(reply_to)
            if target is None:
                raise AssertionError(f"no message {reply_to} in chat {chat.id} to reply to")
            msg["reply_to_message"] = _shallow(target.message)
        if text is not None:
            msg["text"] = text
            entities = _command_entities(text)
            if entities:
                msg["entities"] = entities
        if extra:
            msg.update(extra)
        entry = TranscriptEntry(
            chat_id=chat.id,
            message_id=msg["message_id"],
            direction="user",
            kind=kind,
            text=text if text is not None else (shown or f"[{kind}]"),
            buttons=[],
            message=msg,
            sender_id=user.id,
        )
        self._add_entry(chat, entry)
        user.last_action_seq = self._seq
        self._enqueue("message", msg)
        return msg

    def _set_blocked(self, user: SimUser, blocked: bool) -> None:
        if user.blocked == blocked:
            return
        user.blocked = blocked
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        now = int(time.time())

        def member(status: str) -> dict[str, Any]:
            m: dict[str, Any] = {"status": status, "user": self.bot_user}
            if status == "kicked":
                m["until_date"] = 0
            return m

        self._enqueue(
            "my_chat_member",
            {
                "chat": self._chats[user.id].obj,
                "from": user.as_dict(),
                "date": now,
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            },
        )

    async def _click(
        self,
        user: SimUser,
        button_text: str,
        message: int | TranscriptEntry | None,
        chat_id: int | None,
        timeout: float,
    ) -> CallbackAnswer:
        chat = self._chat_or_fail(chat_id if chat_id is not None else user.id)
        entry, button = self._find_button(chat, button_text, message)
        data = button.get("callback_data")
        if data is None:
            kinds = [k for k in button if k not in ("text", "style", "icon_custom_emoji_id")]
            raise AssertionError(f"button [{button['text']}] has no callback_data ({kinds})")
        loop = asyncio.get_running_loop()
        click = Click(
            query_id=f"{next(self._query_ids)}{secrets.randbelow(10**9):09d}",
            user_id=user.id,
            chat_id=chat.id,
            message_id=entry.message_id,
            button_text=button["text"],
            callback_data=data,
            seq=self._next_seq(),
            future=loop.create_future(),
        )
        self._clicks[click.query_id] = click
        chat.events.append(click)
        user.last_action_seq = self._seq
        update = self._enqueue(
            "callback_query",
            {
                "id": click.query_id,
                "from": user.as_dict(),
                "message": entry.message,
                "chat_instance": str(abs(chat.id) * 7919 % 10**12),
                "data": data,
            },
        )
        await asyncio.wait([click.future], timeout=timeout)
        if not click.future.done():
            hint = ""
            if update in self.dropped_updates:
                hint = (
                    " (the update was not delivered: callback_query is not in the bot's "
                    f"allowed_updates {sorted(self._allowed)})"
                )
            raise AssertionError(
                f"the bot did not answer the click on [{button['text']}] "
                f"(callback_data={data!r}) within {timeout:g}s{hint}\n"
                f"{self.recent_calls()}\nTranscript:\n{self.render_transcript(chat.id, 20)}"
            )
        return click.future.result()

    def _find_button(
        self, chat: _Chat, text: str, message: int | TranscriptEntry | None
    ) -> tuple[TranscriptEntry, dict[str, Any]]:
        if message is not None:
            mid = message.message_id if isinstance(message, TranscriptEntry) else message
            entry = chat.messages.get(mid)
            if entry is None or entry.deleted:
                raise AssertionError(f"no message {mid} in chat {chat.id}")
            candidates = [entry]
        else:
            candidates = [
                e
                for e in reversed(chat.entries)
                if e.direction == "bot" and not e.deleted and e.markup
            ]

        def buttons(e: TranscriptEntry) -> Iterable[dict[str, Any]]:
            assert e.markup is not None or not e.buttons
            for row in (e.markup or {}).get("inline_keyboard", []):
                yield from row

        for e in candidates:
            for b in buttons(e):
                if b.get("text") == text:
                    return e, b
        needle = text.strip()
        for e in candidates:
            found = [b for b in buttons(e) if needle in b.get("text", "").strip()]
            if len(found) == 1:
                return e, found[0]
            if len(found) > 1:
                names = ", ".join(f"[{b['text']}]" for b in found)
                raise AssertionError(
                    f"button text {text!r} is ambiguous in message #{e.message_id}: {names}"
                )
        available = (
            "\n".join(
                f"  #{e.message_id}: " + " ".join(f"[{t}]" for t in e.button_texts())
                for e in candidates[:5]
            )
            or "  (no message with an inline keyboard)"
        )
        raise AssertionError(
            f"no inline button {text!r} in chat {chat.id}; available buttons:\n{available}"
        )

    async def _api_answerCallbackQuery(self, req: _Req) -> Any:
        p = req.params
        click = self._clicks.get(p["callback_query_id"])
        if click is None or click.answer is not None:
            raise ApiError(400, _QUERY_INVALID)
        click.answer = CallbackAnswer(p.get("text"), bool(p.get("show_alert", False)), p.get("url"))
        self.callback_answers.append(click)
        if not click.future.done():
            click.future.set_result(click.answer)
        return True


def _command_entities(text: str) -> list[dict[str, Any]]:
    if "/" not in text:
        return []
    out = []
    for m in _COMMAND_RE.finditer(text):
        offset = utf16_len(text[: m.start()])
        length = utf16_len(m.group(0))
        out.append({"type": "bot_command", "offset": offset, "length": length})
    return out
