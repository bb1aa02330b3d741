"""The emulator's state, and what every part of it needs: chats, the change counter, the
update queue. The API method families (the mixins) all build on EmulatorState."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from .model import (
    ApiError,
    Call,
    Click,
    Fault,
    FileInfo,
    Hold,
    LimitViolation,
    MediaSend,
    RateLimits,
    TranscriptEntry,
    Violation,
    WebhookConfig,
    _Chat,
    _Req,
)
from .spec import BotApiSpec
from .users import SimUser

# Telegram's default when allowed_updates is empty or never given
_NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class EmulatorState:
    """Every attribute of the emulator, and the helpers every method family uses."""

    def __init__(
        self,
        spec_path: Path | str | None = None,
        bot_username: str = "consultbot_test_bot",
        bot_id: int = 7_000_000_001,
        *,
        bot_name: str = "ConsultBot",
        host: str = "127.0.0.1",
        port: int = 0,
        keep_file_bytes: bool = True,
    ) -> None:
        self.spec = BotApiSpec.load(spec_path)
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
        }
        self.host = host
        self.port = port
        self.keep_file_bytes = keep_file_bytes

        self.calls: list[Call] = []
        # Invalid or deprecated calls, and calls to methods not modelled here: each fails a test.
        self.violations: list[Violation] = []
        self.limit_violations: list[LimitViolation] = []
        self.paid_messages = 0  # sent with allow_paid_broadcast beyond the free rate: billed
        self.media_sends: list[MediaSend] = []
        self.callback_answers: list[Click] = []
        self.faults: list[Fault] = []
        self.holds: list[Hold] = []
        self.injected_failures: list[Call] = []
        self.internal_errors: list[str] = []  # bugs of the emulator itself, never the bot's
        self.updates: list[dict[str, Any]] = []  # every update ever queued
        self.queued_at: dict[int, int] = {}  # update_id -> the change counter when queued
        self.dropped_updates: list[dict[str, Any]] = []  # filtered out by allowed_updates
        self.webhook: WebhookConfig | None = None
        # Set by a test: the URLs a load balancer in front of several instances forwards
        # webhook updates to, in turn (a refused connection moves on to the next one).
        self.webhook_targets: list[str] = []
        self._webhook_turn = 0
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.tokens: set[str] = set()

        self._calls_by_method: dict[str, list[Call]] = {}
        self._users: dict[int, SimUser] = {}
        self._chats: dict[int, _Chat] = {}
        self._files: dict[str, FileInfo] = {}
        self._clicks: dict[str, Click] = {}
        self._delivery_counts: dict[int, int] = {}
        self._queue: deque[dict[str, Any]] = deque()
        self._queue_event = asyncio.Event()
        self._poll_waiter: asyncio.Future[bool] | None = None
        self._allowed: frozenset[str] = self._default_allowed()
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._seq = 0
        self._limits: RateLimits | None = None
        self._global_window: deque[float] = deque()
        self._stopping = False
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        # the _api_<method> handlers of every mixin, looked up on the assembled class
        self._handlers: dict[str, Callable[[_Req], Awaitable[Any]]] = {
            name[len("_api_") :]: getattr(self, name)
            for name in dir(self)
            if name.startswith("_api_")
        }

    # -- chats

    def _chat_id(self, chat: int | SimUser) -> int:
        return chat.id if isinstance(chat, SimUser) else chat

    def _chat_or_fail(self, chat: int | SimUser) -> _Chat:
        cid = self._chat_id(chat)
        state = self._chats.get(cid)
        if state is None:
            raise AssertionError(f"the emulator knows no chat {cid}")
        return state

    def _chat_for(self, chat_id: Any) -> _Chat:
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    # -- the change counter: every new or changed message, and every click, gets a seq

    @property
    def seq(self) -> int:
        """The change counter: pass it as `since=` to wait for what happens after now."""
        return self._seq

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _touch(self, chat: _Chat, entry: TranscriptEntry) -> None:
        entry.seq = self._next_seq()
        chat.touched.append((entry.seq, entry))

    def _add_entry(self, chat: _Chat, entry: TranscriptEntry) -> None:
        chat.messages[entry.message_id] = entry
        chat.entries.append(entry)
        chat.events.append(entry)
        self._touch(chat, entry)

    # -- the update queue (read by getUpdates, or pushed to the webhook)

    def _default_allowed(self) -> frozenset[str]:
        fields = set(self.spec.type_fields("Update")) - {"update_id"}
        return frozenset(fields - _NOT_BY_DEFAULT)

    def _enqueue(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: payload}
        self.updates.append(update)
        self.queued_at[update["update_id"]] = self._seq
        if kind not in self._allowed:
            self.dropped_updates.append(update)
            return update
        self._queue.append(update)
        self._wake_pollers(True)
        return update

    def _wake_pollers(self, ok: bool) -> None:
        self._queue_event.set()
        waiter = self._poll_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(ok)
