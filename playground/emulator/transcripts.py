"""What tests read and wait for: transcripts, the call log, delivery counts."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any

from .model import Call, Click, TranscriptEntry
from .state import EmulatorState
from .users import SimUser

_POLL_STEP = 0.02


class TranscriptsMixin(EmulatorState):
    """Reading a chat as its user sees it, the call log, and waiting for either."""

    def transcript(self, chat_id: int | SimUser) -> list[TranscriptEntry]:
        return list(self._chat_or_fail(chat_id).entries)

    def bot_messages(
        self, chat_id: int | SimUser, *, include_deleted: bool = False
    ) -> list[TranscriptEntry]:
        return [
            e
            for e in self._chat_or_fail(chat_id).entries
            if e.direction == "bot" and (include_deleted or not e.deleted)
        ]

    def last_bot_message(self, chat_id: int | SimUser) -> TranscriptEntry | None:
        for entry in reversed(self._chat_or_fail(chat_id).entries):
            if entry.direction == "bot" and not entry.deleted:
                return entry
        return None

    def render_transcript(self, chat_id: int | SimUser, last: int | None = None) -> str:
        """Human-readable chat history (messages in their current state, and clicks)."""
        chat = self._chat_or_fail(chat_id)
        events = chat.events[-last:] if last else chat.events
        lines: list[str] = []
        for ev in events:
            if isinstance(ev, Click):
                who = self._users[ev.user_id].first_name if ev.user_id in self._users else ""
                line = f"USER{f' {who}' if chat.type != 'private' else ''} clicked "
                line += f"[{ev.button_text}] on #{ev.message_id}"
                if ev.answer is None:
                    line += " (not answered)"
                elif ev.answer.text:
                    alert = " (alert)" if ev.answer.show_alert else ""
                    line += f" -> {ev.answer.text!r}{alert}"
                lines.append(line)
                continue
            who = "BOT" if ev.direction == "bot" else "USER"
            if ev.direction == "user" and chat.type != "private":
                who += f" {ev.message.get('from', {}).get('first_name', '')}"
            flags = []
            if ev.edit_count:
                flags.append(f"edited x{ev.edit_count}")
            if ev.deleted:
                flags.append("deleted")
            head = f"{who} #{ev.message_id}{' (' + ', '.join(flags) + ')' if flags else ''}: "
            text = ev.text
            if ev.kind != "text" and ev.has_caption:
                text = f"[{ev.kind}] {text}"
            body = text.replace("\n", "\n" + " " * 5)
            lines.append(head + body)
            for row in ev.buttons:
                lines.append("   " + " ".join(f"[{b}]" for b in row))
            if ev.reply_keyboard:
                for row in ev.reply_keyboard:
                    lines.append("   keyboard: " + " ".join(f"({b})" for b in row))
        return "\n".join(lines)

    # -- stats

    def delivered(self, chat_id: int | SimUser) -> list[TranscriptEntry]:
        return list(self._chat_or_fail(chat_id).delivered)

    def delivery_counts(self) -> dict[int, int]:
        return dict(self._delivery_counts)

    def calls_to(self, method: str) -> list[Call]:
        canonical = self.spec.canonical_method(method) or method
        return list(self._calls_by_method.get(canonical, []))

    def assert_no_violations(self) -> None:
        if self.violations:
            lines = "\n".join(f"  {v.method} {v.param}: {v.message}" for v in self.violations)
            raise AssertionError(f"{len(self.violations)} Bot API violations:\n{lines}")

    # -- waiting

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,
        what: str = "condition",
    ) -> Any:
        """Poll `predicate` (sync or async) until it returns something truthy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            if loop.time() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout:g}s waiting for {what}\n{self.recent_calls()}"
                )
            await asyncio.sleep(_POLL_STEP)

    async def wait_for_bot_message(
        self,
        chat_id: int | SimUser,
        contains: str | None = None,
        *,
        since: int = 0,
        timeout: float = 10.0,
    ) -> TranscriptEntry:
        """A bot message of the chat that appeared or changed after `since` (see .seq)."""
        chat = self._chat_or_fail(chat_id)

        def find() -> TranscriptEntry | None:
            for seq, entry in reversed(chat.touched):
                if seq <= since:
                    return None
                if entry.direction != "bot" or entry.deleted or entry.seq != seq:
                    continue
                if contains is None or contains in entry.text:
                    return entry
            return None

        try:
            return await self.wait_for(
                find,
                timeout,
                "bot message"
                + (f" containing {contains!r}" if contains else "")
                + f" in chat {chat.id}",
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nTranscript of chat {chat.id}:\n{self.render_transcript(chat.id, 20)}"
            ) from None

    def recent_calls(self, n: int = 12) -> str:
        """The last API calls (long polls left out), for failure messages."""
        lines: list[str] = []
        polls = 0
        for call in reversed(self.calls):
            if call.method == "getUpdates" and not call.response.get("result"):
                polls += 1
                continue
            lines.append("  " + _summarize_call(call))
            if len(lines) >= n:
                break
        if not lines:
            return f"No API calls yet (empty getUpdates polls: {polls})."
        return "Recent API calls (newest last):\n" + "\n".join(reversed(lines))


def _summarize_call(call: Call) -> str:
    parts = []
    for key, value in list(call.params.items())[:5]:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if len(text) > 50:
            text = text[:47] + "..."
        parts.append(f"{key}={text!r}" if isinstance(value, str) else f"{key}={text}")
    resp = call.response
    if resp.get("ok"):
        outcome = "ok"
    else:
        outcome = f"{resp.get('error_code')} {resp.get('description')}"
    return f"{call.method}({', '.join(parts)}) -> {outcome}"
