"""A Telegram Bot API emulator for end-to-end tests and benchmarks.

An aiohttp server on 127.0.0.1 that a real bot process talks to through
`TELEGRAM_API_URL`. Every call is checked against the Bot API description
(see spec.py); simulated users produce real updates (long polling or a loopback
webhook); what the bot sends is kept as per-chat transcripts that tests can read,
wait for and click on. Faults (429/403/5xx) and Telegram's rate limits can be
injected to test the bot's delivery logic.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

import aiohttp
from aiohttp import web
from yarl import URL

from .spec import BotApiSpec, CallValidation, UploadedFile, render_text

log = logging.getLogger("consultbot.tests.emulator")

_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_BLOCKED = "Forbidden: bot was blocked by the user"
_QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_DEFAULT_FAULT_DESCRIPTIONS = {
    400: "Bad Request: injected fault",
    403: _BLOCKED,
    500: "Internal Server Error",
    502: "Bad Gateway",
}
# Telegram's default when allowed_updates is empty or never given
_NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_MAX_UPLOAD = 60 * 1024 * 1024
_PHOTO_MAX_BYTES = 10 * 1024 * 1024
_DOCUMENT_MAX_BYTES = 50 * 1024 * 1024
_POLL_STEP = 0.02


# --------------------------------------------------------------------------- records


class Violation(NamedTuple):
    method: str
    param: str
    message: str


class Call(NamedTuple):
    time: float  # time.monotonic() when the request arrived
    method: str
    params: dict[str, Any]
    response: dict[str, Any]


class LimitViolation(NamedTuple):
    time: float
    method: str
    chat_id: int
    kind: str  # "global" | "chat" | "group"
    limit: float
    retry_after: int


class MediaSend(NamedTuple):
    time: float
    method: str
    chat_id: int
    field: str
    source: str  # "upload" (bytes were sent) | "file_id" (reused) | "url"
    file_id: str
    size: int


@dataclass(slots=True)
class CallbackAnswer:
    text: str | None
    show_alert: bool
    url: str | None = None


@dataclass(eq=False, slots=True)
class Click:
    """A callback query sent by a simulated user, and the bot's answer to it."""

    query_id: str
    user_id: int
    chat_id: int
    message_id: int
    button_text: str
    callback_data: str
    seq: int
    future: asyncio.Future[CallbackAnswer]
    answer: CallbackAnswer | None = None


@dataclass(eq=False, slots=True)
class TranscriptEntry:
    """One message of a chat as the user sees it; edits update it in place."""

    chat_id: int
    message_id: int
    direction: str  # "bot" | "user"
    kind: str  # "text" | "photo" | "document" | "sticker" | ...
    text: str  # text, caption, or "[photo]"-style placeholder
    buttons: list[list[str]]  # inline keyboard, rows of button texts
    message: dict[str, Any]  # the current Message object, as the Bot API returns it
    sender_id: int
    entities: list[dict[str, Any]] = field(default_factory=list)
    markup: dict[str, Any] | None = None  # the inline keyboard markup, for clicks
    reply_keyboard: list[list[str]] | None = None
    media: MediaSend | None = None
    edited: bool = False
    edit_count: int = 0
    deleted: bool = False
    seq: int = 0  # emulator change counter at creation/last edit

    @property
    def has_caption(self) -> bool:
        return self.kind != "text" and "caption" in self.message

    def button_texts(self) -> list[str]:
        return [text for row in self.buttons for text in row]


@dataclass(slots=True)
class Fault:
    method: str | None  # None matches every method
    chat_id: int | None
    code: int
    retry_after: int
    times: int
    description: str | None
    hits: int = 0

    @property
    def remaining(self) -> int:
        return self.times - self.hits

    def matches(self, method: str, chat_id: Any) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def response(self) -> tuple[str, dict[str, Any] | None]:
        if self.code == 429:
            desc = self.description or f"Too Many Requests: retry after {self.retry_after}"
            return desc, {"retry_after": self.retry_after}
        return self.description or _DEFAULT_FAULT_DESCRIPTIONS.get(self.code, "Error"), None


@dataclass(slots=True)
class RateLimits:
    global_per_second: float
    per_chat_per_second: float
    per_group_per_minute: float
    scale: float


@dataclass(slots=True)
class WebhookConfig:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    deliver: bool  # only loopback URLs are ever contacted
    last_error_date: int | None = None
    last_error_message: str | None = None
    delivered: int = 0


@dataclass(slots=True)
class FileInfo:
    file_id: str
    file_unique_id: str
    kind: str
    size: int
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0
    data: bytes | None = None
    photo_sizes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def file_path(self) -> str:
        return f"{self.kind}s/{self.file_unique_id}"


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass(eq=False)
class _Chat:
    id: int
    type: str  # "private" | "group" | "supergroup"
    obj: dict[str, Any]  # the Chat object
    user: SimUser | None = None
    next_message_id: int = 1
    messages: dict[int, TranscriptEntry] = field(default_factory=dict)
    entries: list[TranscriptEntry] = field(default_factory=list)
    events: list[TranscriptEntry | Click] = field(default_factory=list)
    # (seq, entry) every time a message appears or changes, for wait_for_message
    touched: list[tuple[int, TranscriptEntry]] = field(default_factory=list)
    delivered: list[TranscriptEntry] = field(default_factory=list)
    window: deque[float] = field(default_factory=deque)  # send times, for rate limits
    owner: int | None = None
    admins: list[int] = field(default_factory=list)
    members: set[int] = field(default_factory=set)
    bot_is_admin: bool = True
    reply_keyboard: list[list[str]] | None = None

    def new_message_id(self) -> int:
        mid = self.next_message_id
        self.next_message_id += 1
        return mid


class _Req(NamedTuple):
    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    rendered: dict[str, tuple[str, list[dict[str, Any]]]]


# --------------------------------------------------------------------------- users


class SimUser:
    """A simulated Telegram user; every action produces a real update for the bot."""

    def __init__(
        self,
        emu: BotAPIEmulator,
        user_id: int,
        first_name: str,
        language_code: str | None,
        username: str | None,
        last_name: str | None,
        started: bool,
    ) -> None:
        self.emu = emu
        self.id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.username = username
        self.last_name = last_name
        self.started = started  # has the user ever opened the bot's chat?
        self.blocked = False
        self.last_action_seq = 0

    def __repr__(self) -> str:
        return f"SimUser({self.id}, {self.first_name!r})"

    @property
    def chat_id(self) -> int:
        return self.id

    def as_dict(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    async def send(self, text: str, *, reply_to: int | None = None) -> dict[str, Any]:
        """A text message in the private chat with the bot."""
        return self.emu._user_message(self, self.id, text=text, reply_to=reply_to)

    async def send_in_group(
        self, chat_id: int, text: str, *, reply_to: int | None = None
    ) -> dict[str, Any]:
        return self.emu._user_message(self, chat_id, text=text, reply_to=reply_to)

    async def send_photo(self, caption: str | None = None) -> dict[str, Any]:
        info = self.emu._register_file("photo", size=24_000, width=1280, height=960)
        extra: dict[str, Any] = {"photo": info.photo_sizes}
        if caption:
            extra["caption"] = caption
        return self.emu._user_message(self, self.id, kind="photo", extra=extra, shown=caption)

    async def send_sticker(self, emoji: str = "👍") -> dict[str, Any]:
        info = self.emu._register_file("sticker", size=12_000, width=512, height=512)
        sticker = {
            "file_id": info.file_id,
            "file_unique_id": info.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": info.size,
        }
        return self.emu._user_message(self, self.id, kind="sticker", extra={"sticker": sticker})

    async def send_document(
        self, file_name: str = "document.pdf", caption: str | None = None
    ) -> dict[str, Any]:
        info = self.emu._register_file(
            "document", size=50_000, file_name=file_name, mime_type="application/pdf"
        )
        extra: dict[str, Any] = {"document": self.emu._document_dict(info)}
        if caption:
            extra["caption"] = caption
        return self.emu._user_message(self, self.id, kind="document", extra=extra, shown=caption)

    async def click(
        self,
        button_text: str,
        *,
        message: int | TranscriptEntry | None = None,
        chat_id: int | None = None,
        timeout: float = 10.0,
    ) -> CallbackAnswer:
        """Press an inline button and wait until the bot answers the callback query."""
        return await self.emu._click(self, button_text, message, chat_id, timeout)

    def block_bot(self) -> None:
        self.emu._set_blocked(self, True)

    def unblock_bot(self) -> None:
        self.emu._set_blocked(self, False)

    async def wait_for_message(
        self,
        contains: str | None = None,
        timeout: float = 10.0,
    ) -> TranscriptEntry:
        """A bot message of this user's chat, new or edited since the user's last action."""
        return await self.emu.wait_for_bot_message(
            self.id, contains, since=self.last_action_seq, timeout=timeout
        )

    def transcript(self) -> list[TranscriptEntry]:
        return self.emu.transcript(self.id)

    def render_transcript(self) -> str:
        return self.emu.render_transcript(self.id)

    def last_bot_message(self) -> TranscriptEntry | None:
        return self.emu.last_bot_message(self.id)


# --------------------------------------------------------------------------- emulator


class BotAPIEmulator:
    """The emulated Bot API server. Use `async with BotAPIEmulator() as emu:`."""

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
        self.violations: list[Violation] = []
        self.limit_violations: list[LimitViolation] = []
        self.media_sends: list[MediaSend] = []
        self.callback_answers: list[Click] = []
        self.faults: list[Fault] = []
        self.injected_failures: list[Call] = []
        self.unimplemented: list[str] = []  # spec-valid methods answered with a bare True
        self.deprecations: list[Violation] = []  # legacy parameters Telegram still accepts
        self.internal_errors: list[str] = []  # bugs of the emulator itself, never the bot's
        self.updates: list[dict[str, Any]] = []  # every update ever queued
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
        self._handlers: dict[str, Callable[[_Req], Awaitable[Any]]] = {
            name[len("_api_") :]: getattr(self, name)
            for name in dir(self)
            if name.startswith("_api_")
        }

    # -- lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=_MAX_UPLOAD)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the real port when 0 was asked for
        self._stopping = False
        log.debug("Bot API emulator listening on %s", self.base_url)

    async def stop(self) -> None:
        self._stopping = True
        self._wake_pollers(True)
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            await asyncio.gather(self._webhook_task, return_exceptions=True)
            self._webhook_task = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- users and chats

    def add_user(
        self,
        user_id: int,
        first_name: str,
        language_code: str | None = "fr",
        username: str | None = None,
        last_name: str | None = None,
        *,
        started: bool = True,
    ) -> SimUser:
        """A user with a private chat; `started=False`: never opened the bot (403 on send)."""
        if user_id in self._users:
            raise ValueError(f"user {user_id} already exists")
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user = SimUser(self, user_id, first_name, language_code, username, last_name, started)
        self._users[user_id] = user
        obj: dict[str, Any] = {"id": user_id, "type": "private", "first_name": first_name}
        if last_name:
            obj["last_name"] = last_name
        if username:
            obj["username"] = username
        self._chats[user_id] = _Chat(user_id, "private", obj, user=user)
        return user

    def user(self, user_id: int) -> SimUser:
        return self._users[user_id]

    @property
    def users(self) -> list[SimUser]:
        return list(self._users.values())

    def add_group(
        self,
        chat_id: int,
        title: str,
        admins: Iterable[int] = (),
        members: Iterable[int] = (),
        *,
        owner: int | None = None,
        bot_is_admin: bool = True,
    ) -> None:
        """A group the bot is in. Ids starting with -100 are supergroups."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        chat = _Chat(chat_id, kind, {"id": chat_id, "type": kind, "title": title})
        chat.owner = owner
        chat.admins = list(admins)
        chat.bot_is_admin = bot_is_admin
        chat.members = set(members) | set(chat.admins) | ({owner} if owner else set())
        for uid in chat.members:
            if uid not in self._users:
                # known to Telegram, but has never opened the bot's private chat
                self.add_user(uid, f"User {uid}", None, started=False)
        self._chats[chat_id] = chat

    # -- transcripts

    def _chat_id(self, chat: int | SimUser) -> int:
        return chat.id if isinstance(chat, SimUser) else chat

    def _chat_or_fail(self, chat: int | SimUser) -> _Chat:
        cid = self._chat_id(chat)
        state = self._chats.get(cid)
        if state is None:
            raise AssertionError(f"the emulator knows no chat {cid}")
        return state

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

    def file_bytes(self, file_id: str) -> bytes | None:
        """The bytes of a file the bot uploaded (None when not kept or unknown)."""
        info = self._files.get(file_id)
        return info.data if info is not None else None

    def delivery_counts(self) -> dict[int, int]:
        return dict(self._delivery_counts)

    @property
    def long_polling(self) -> bool:
        """A getUpdates is waiting for the next update."""
        return self._poll_waiter is not None and not self._poll_waiter.done()

    def calls_to(self, method: str) -> list[Call]:
        canonical = self.spec.canonical_method(method) or method
        return list(self._calls_by_method.get(canonical, []))

    @property
    def seq(self) -> int:
        """The change counter: pass it as `since=` to wait for what happens after now."""
        return self._seq

    def assert_no_violations(self) -> None:
        if self.violations:
            lines = "\n".join(f"  {v.method} {v.param}: {v.message}" for v in self.violations)
            raise AssertionError(f"{len(self.violations)} Bot API violations:\n{lines}")

    # -- faults and limits

    def inject_fault(
        self,
        method: str | None = "sendMessage",
        chat_id: int | None = None,
        code: int = 429,
        retry_after: int = 1,
        times: int = 1,
        description: str | None = None,
    ) -> Fault:
        """The next `times` matching calls fail with `code` (and are not delivered)."""
        fault = Fault(method, chat_id, code, retry_after, times, description)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def enforce_limits(
        self,
        global_per_second: float = 30,
        per_chat_per_second: float = 1,
        per_group_per_minute: float = 20,
        scale: float = 1.0,
    ) -> None:
        """Answer 429 to sends beyond Telegram's broadcast limits (sliding windows)."""
        self._limits = RateLimits(
            global_per_second, per_chat_per_second, per_group_per_minute, scale
        )
        self._global_window.clear()
        for chat in self._chats.values():
            chat.window.clear()

    def disable_limits(self) -> None:
        self._limits = None

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

    # ------------------------------------------------------------------ HTTP layer

    async def _handle(self, request: web.Request) -> web.Response:
        self.tokens.add(request.match_info["token"])
        try:
            params, files = await _read_params(request)
        except ValueError as exc:
            body = {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}
            return web.json_response(body, status=400)
        status, body = await self._process(request.match_info["method"], params, files)
        return web.json_response(body, status=status)

    async def _handle_file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        for info in self._files.values():
            if info.file_path == path and info.data is not None:
                return web.Response(body=info.data)
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    async def _process(
        self, method_name: str, params: dict[str, Any], files: dict[str, UploadedFile]
    ) -> tuple[int, dict[str, Any]]:
        started = time.monotonic()
        method = self.spec.canonical_method(method_name)
        logged: dict[str, Any] = params
        if method is None:
            self.violations.append(Violation(method_name, "", "unknown Bot API method"))
            status, body = 404, {"ok": False, "error_code": 404, "description": "Not Found"}
            method = method_name
        else:
            check: CallValidation = self.spec.validate_call(method, params, files)
            if check.errors:
                for err in check.errors:
                    self.violations.append(Violation(method, err.param, err.message))
                status, body = 400, _error(400, "Bad Request: " + check.errors[0].description)
            else:
                for dep in check.deprecated:
                    self.deprecations.append(Violation(method, dep.param, dep.message))
                logged = {k: _loggable(v) for k, v in check.params.items()}
                req = _Req(method, check.params, files, check.rendered)
                status, body = await self._execute(req)
        call = Call(started, method, logged, body)
        self.calls.append(call)
        self._calls_by_method.setdefault(method, []).append(call)
        return status, body

    async def _execute(self, req: _Req) -> tuple[int, dict[str, Any]]:
        fault = self._matching_fault(req)
        try:
            if fault is not None:
                fault.hits += 1
                desc, parameters = fault.response()
                raise ApiError(fault.code, desc, parameters)
            handler = self._handlers.get(req.method)
            if handler is None:
                result = await self._generic(req)
            else:
                result = await handler(req)
        except ApiError as exc:
            body = _error(exc.code, exc.description, exc.parameters)
            if fault is not None:
                self.injected_failures.append(
                    Call(time.monotonic(), req.method, dict(req.params), body)
                )
            return exc.code, body
        except Exception as exc:  # an emulator bug: report it loudly, keep serving
            log.exception("emulator failure in %s", req.method)
            self.internal_errors.append(f"{req.method}: {exc!r}")
            return 500, _error(500, "Internal Server Error")
        return 200, {"ok": True, "result": result}

    def _matching_fault(self, req: _Req) -> Fault | None:
        if not self.faults:
            return None
        chat_id = req.params.get("chat_id")
        for fault in self.faults:
            if fault.matches(req.method, chat_id):
                return fault
        return None

    # ------------------------------------------------------------------ updates

    def _default_allowed(self) -> frozenset[str]:
        fields = set(self.spec.type_fields("Update")) - {"update_id"}
        return frozenset(fields - _NOT_BY_DEFAULT)

    def _set_allowed(self, allowed: list[str] | None) -> None:
        if allowed is None:
            return  # "If not specified, the previous setting will be used"
        self._allowed = frozenset(allowed) if allowed else self._default_allowed()

    def _enqueue(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: payload}
        self.updates.append(update)
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

    def _confirm(self, offset: int | None) -> None:
        queue = self._queue
        if offset is None:
            return
        if offset < 0:
            while len(queue) > -offset:
                queue.popleft()
            return
        while queue and queue[0]["update_id"] < offset:
            queue.popleft()

    def _take(self, limit: int) -> list[dict[str, Any]]:
        # not removed: an update stays until a later offset confirms it, as in Telegram
        return list(itertools.islice(self._queue, limit))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _touch(self, chat: _Chat, entry: TranscriptEntry) -> None:
        entry.seq = self._next_seq()
        chat.touched.append((entry.seq, entry))

    # ------------------------------------------------------------------ user side

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

    def _add_entry(self, chat: _Chat, entry: TranscriptEntry) -> None:
        chat.messages[entry.message_id] = entry
        chat.entries.append(entry)
        chat.events.append(entry)
        self._touch(chat, entry)

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

    # ------------------------------------------------------------------ bot side helpers

    def _chat_for(self, chat_id: Any) -> _Chat:
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    def _check_writable(self, chat: _Chat) -> None:
        user = chat.user
        if user is None:
            return
        if user.blocked:
            raise ApiError(403, _BLOCKED)
        if not user.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")

    def _target(self, req: _Req) -> _Chat:
        chat = self._chat_for(req.params.get("chat_id"))
        self._check_writable(chat)
        return chat

    def _check_limits(self, req: _Req, chat: _Chat) -> None:
        lim = self._limits
        if lim is None:
            return
        now = time.monotonic()
        g = self._global_window
        _prune(g, now - 1.0)
        cap = lim.global_per_second * lim.scale
        if len(g) >= cap:
            self._limit_hit(req, chat, "global", cap, g[0] + 1.0 - now)
        if chat.type == "private":
            span, cap, kind = 1.0, lim.per_chat_per_second * lim.scale, "chat"
        else:
            span, cap, kind = 60.0, lim.per_group_per_minute * lim.scale, "group"
        w = chat.window
        _prune(w, now - span)
        if len(w) >= cap:
            self._limit_hit(req, chat, kind, cap, w[0] + span - now)
        g.append(now)
        w.append(now)

    def _limit_hit(self, req: _Req, chat: _Chat, kind: str, cap: float, wait: float) -> None:
        retry = max(1, math.ceil(wait))
        self.limit_violations.append(
            LimitViolation(time.monotonic(), req.method, chat.id, kind, cap, retry)
        )
        raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})

    def _text(self, req: _Req, name: str) -> tuple[str, list[dict[str, Any]]]:
        value = req.params.get(name)
        if value is None:
            return "", []
        rendered = req.rendered.get(name)
        if rendered is None:
            rendered = render_text(value, req.params.get("parse_mode"))
        text, entities = rendered
        explicit = req.params.get("entities" if name == "text" else f"{name}_entities")
        return text, (explicit if explicit else entities)

    def _reply_target(self, chat: _Chat, params: dict[str, Any]) -> dict[str, Any] | None:
        rp = params.get("reply_parameters")
        if not rp and "reply_to_message_id" in params:  # the legacy form
            rp = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        if not rp:
            return None
        source = self._chats.get(rp.get("chat_id", chat.id)) if "chat_id" in rp else chat
        entry = source.messages.get(rp["message_id"]) if source else None
        if entry is None or entry.deleted:
            if rp.get("allow_sending_without_reply"):
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        return _shallow(entry.message)

    def _bot_message(
        self,
        chat: _Chat,
        req: _Req,
        *,
        kind: str,
        text: str,
        entities: list[dict[str, Any]],
        extra: dict[str, Any] | None = None,
        media: MediaSend | None = None,
        reply_to: dict[str, Any] | None = None,
        deliver: bool = True,
    ) -> TranscriptEntry:
        markup = req.params.get("reply_markup")
        inline = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
        msg: dict[str, Any] = {
            "message_id": chat.new_message_id(),
            "from": self.bot_user,
            "chat": chat.obj,
            "date": int(time.time()),
        }
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        if extra:
            msg.update(extra)
        _set_text(msg, kind, text, entities)
        if inline is not None:
            msg["reply_markup"] = inline  # only inline keyboards are part of a Message
        if isinstance(markup, dict):
            if "keyboard" in markup:
                chat.reply_keyboard = [[b["text"] for b in row] for row in markup["keyboard"]]
            elif markup.get("remove_keyboard"):
                chat.reply_keyboard = None
        entry = TranscriptEntry(
            chat_id=chat.id,
            message_id=msg["message_id"],
            direction="bot",
            kind=kind,
            text=_shown(kind, text),
            buttons=_button_rows(inline),
            message=msg,
            sender_id=self.bot_id,
            entities=entities,
            markup=inline,
            reply_keyboard=chat.reply_keyboard if _has_keyboard(markup) else None,
            media=media,
        )
        self._add_entry(chat, entry)
        if deliver:
            chat.delivered.append(entry)
        return entry

    def _count_delivery(self, chat: _Chat) -> None:
        self._delivery_counts[chat.id] = self._delivery_counts.get(chat.id, 0) + 1

    def _editable(self, req: _Req) -> tuple[_Chat, TranscriptEntry] | None:
        p = req.params
        if "inline_message_id" in p:
            return None
        if "chat_id" not in p or "message_id" not in p:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        chat = self._target(req)
        entry = chat.messages.get(p["message_id"])
        if entry is None or entry.deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        if entry.direction != "bot":
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat, entry

    def _apply_edit(
        self,
        chat: _Chat,
        entry: TranscriptEntry,
        *,
        kind: str,
        text: str,
        entities: list[dict[str, Any]],
        inline: dict[str, Any] | None,
        extra: dict[str, Any] | None = None,
        media: MediaSend | None = None,
    ) -> dict[str, Any]:
        msg = dict(entry.message)
        for key in ("text", "entities", "caption", "caption_entities", "reply_markup"):
            msg.pop(key, None)
        if extra:
            for key in ("photo", "document", "video", "animation", "audio"):
                msg.pop(key, None)
            msg.update(extra)
        _set_text(msg, kind, text, entities)
        if inline is not None:
            msg["reply_markup"] = inline
        msg["edit_date"] = int(time.time())
        entry.message = msg
        entry.kind = kind
        entry.text = _shown(kind, text)
        entry.entities = entities
        entry.markup = inline
        entry.buttons = _button_rows(inline)
        if media is not None:
            entry.media = media
        entry.edited = True
        entry.edit_count += 1
        self._touch(chat, entry)
        return msg

    # -- files

    def _register_file(
        self,
        kind: str,
        *,
        size: int,
        data: bytes | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int = 0,
        height: int = 0,
    ) -> FileInfo:
        n = next(self._file_ids)
        prefix = {"photo": "AgAC", "document": "BQAC", "sticker": "CAAC"}.get(kind, "BAAC")
        file_id = f"{prefix}AgIAAxkB{n:06d}{secrets.token_urlsafe(12)}"
        info = FileInfo(
            file_id=file_id,
            file_unique_id=f"AQAD{n:06d}",
            kind=kind,
            size=size,
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
            data=data if self.keep_file_bytes else None,
        )
        self._files[file_id] = info
        if kind == "photo":
            # Telegram returns several sizes, each with its own file_id
            for label, side in (("s", 90), ("m", 320)):
                if max(width, height) > side:
                    scale = side / max(width, height)
                    sid = f"{file_id}{label}"
                    info.photo_sizes.append(
                        {
                            "file_id": sid,
                            "file_unique_id": f"{info.file_unique_id}{label}",
                            "file_size": max(1, size // (8 if label == "s" else 3)),
                            "width": max(1, round(width * scale)),
                            "height": max(1, round(height * scale)),
                        }
                    )
                    self._files[sid] = info
            info.photo_sizes.append(
                {
                    "file_id": file_id,
                    "file_unique_id": info.file_unique_id,
                    "file_size": size,
                    "width": width,
                    "height": height,
                }
            )
        return info

    def _document_dict(self, info: FileInfo) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "file_id": info.file_id,
            "file_unique_id": info.file_unique_id,
            "file_size": info.size,
        }
        if info.file_name:
            doc["file_name"] = info.file_name
        if info.mime_type:
            doc["mime_type"] = info.mime_type
        return doc

    def _resolve_media(
        self, kind: str, value: Any, files: dict[str, UploadedFile]
    ) -> tuple[str, FileInfo | None, UploadedFile | None, str | None]:
        """(source, known file, upload, url) for a media parameter; raises 400 if invalid."""
        if isinstance(value, str) and value.startswith("attach://"):
            value = files.get(value[len("attach://") :])
            if value is None:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if isinstance(value, UploadedFile):
            if not value.data:
                raise ApiError(400, "Bad Request: file must be non-empty")
            limit = _PHOTO_MAX_BYTES if kind == "photo" else _DOCUMENT_MAX_BYTES
            if len(value.data) > limit:
                raise ApiError(400, "Bad Request: file is too big")
            return "upload", None, value, None
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return "url", None, None, value  # never fetched: no traffic leaves the host
        info = self._files.get(value) if isinstance(value, str) else None
        if info is None or (kind == "photo") != (info.kind == "photo"):
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        return "file_id", info, None, None

    def _store_media(
        self,
        req: _Req,
        chat: _Chat,
        kind: str,
        field_name: str,
        resolved: tuple[str, FileInfo | None, UploadedFile | None, str | None],
    ) -> tuple[FileInfo, MediaSend]:
        source, info, upload, url = resolved
        if info is None:
            if upload is not None:
                size = len(upload.data)
                name, mime = upload.filename, upload.content_type
                data: bytes | None = upload.data
            else:
                assert url is not None
                size, name, mime, data = 100_000, url.rsplit("/", 1)[-1] or None, None, None
            width = height = 0
            if kind == "photo":
                width, height = _image_size(data) if data else (800, 600)
            info = self._register_file(
                kind,
                size=size,
                data=data,
                file_name=name,
                mime_type=mime,
                width=width,
                height=height,
            )
        media = MediaSend(
            time.monotonic(), req.method, chat.id, field_name, source, info.file_id, info.size
        )
        self.media_sends.append(media)
        return info, media

    def _media_extra(self, kind: str, info: FileInfo) -> dict[str, Any]:
        if kind == "photo":
            return {"photo": info.photo_sizes}
        if kind == "document":
            return {"document": self._document_dict(info)}
        return {}

    # ------------------------------------------------------------------ API methods

    async def _api_getMe(self, req: _Req) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _api_logOut(self, req: _Req) -> Any:
        return True

    async def _api_close(self, req: _Req) -> Any:
        return True

    async def _api_getUpdates(self, req: _Req) -> Any:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is "
                "active; use deleteWebhook to delete the webhook first",
            )
        p = req.params
        limit = p.get("limit", 100)
        if not 1 <= limit <= 100:
            limit = 100
        timeout = max(0, p.get("timeout", 0))
        self._set_allowed(p.get("allowed_updates"))
        self._confirm(p.get("offset"))
        # a newer getUpdates terminates an older one still waiting, as in Telegram
        self._wake_pollers(False)
        batch = self._take(limit)
        if batch or timeout == 0 or self._stopping:
            return batch
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._poll_waiter = waiter
        try:
            await asyncio.wait([waiter], timeout=timeout)
        finally:
            if self._poll_waiter is waiter:
                self._poll_waiter = None
        if waiter.done() and not waiter.result():
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure "
                "that only one bot instance is running",
            )
        return [] if self._stopping else self._take(limit)

    async def _api_setWebhook(self, req: _Req) -> Any:
        p = req.params
        url = p.get("url", "")
        if not url:
            return await self._api_deleteWebhook(req)
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ApiError(400, "Bad Request: bad webhook: invalid webhook URL specified")
        loopback = parsed.host in _LOOPBACK_HOSTS
        if parsed.scheme != "https" and not loopback:
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        if p.get("drop_pending_updates"):
            self._queue.clear()
        self._set_allowed(p.get("allowed_updates"))
        self.webhook = WebhookConfig(
            url, p.get("secret_token"), p.get("allowed_updates"), deliver=loopback
        )
        self._wake_pollers(False)
        if loopback and (self._webhook_task is None or self._webhook_task.done()):
            self._webhook_task = asyncio.create_task(self._webhook_loop())
        return True

    async def _api_deleteWebhook(self, req: _Req) -> Any:
        self.webhook = None
        if req.params.get("drop_pending_updates"):
            self._queue.clear()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            self._webhook_task = None
        return True

    async def _api_getWebhookInfo(self, req: _Req) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        if self.webhook is not None:
            if self.webhook.allowed_updates is not None:
                info["allowed_updates"] = self.webhook.allowed_updates
            if self.webhook.last_error_date:
                info["last_error_date"] = self.webhook.last_error_date
                info["last_error_message"] = self.webhook.last_error_message
        return info

    # -- commands and menu

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), params.get("language_code", "")

    async def _api_setMyCommands(self, req: _Req) -> Any:
        self.commands[self._commands_key(req.params)] = req.params["commands"]
        return True

    async def _api_getMyCommands(self, req: _Req) -> Any:
        return self.commands.get(self._commands_key(req.params), [])

    async def _api_deleteMyCommands(self, req: _Req) -> Any:
        self.commands.pop(self._commands_key(req.params), None)
        return True

    async def _api_setChatMenuButton(self, req: _Req) -> Any:
        chat_id = req.params.get("chat_id")
        if chat_id is not None:
            self._chat_for(chat_id)
        self.menu_buttons[chat_id] = req.params.get("menu_button") or {"type": "default"}
        return True

    async def _api_getChatMenuButton(self, req: _Req) -> Any:
        chat_id = req.params.get("chat_id")
        return self.menu_buttons.get(chat_id, self.menu_buttons.get(None, {"type": "default"}))

    # -- sending

    async def _api_sendMessage(self, req: _Req) -> Any:
        chat = self._target(req)
        text, entities = self._text(req, "text")
        reply_to = self._reply_target(chat, req.params)
        self._check_limits(req, chat)
        entry = self._bot_message(
            chat, req, kind="text", text=text, entities=entities, reply_to=reply_to
        )
        self._count_delivery(chat)
        return entry.message

    async def _send_media(self, req: _Req, kind: str) -> Any:
        chat = self._target(req)
        caption, entities = self._text(req, "caption")
        resolved = self._resolve_media(kind, req.params[kind], req.files)
        if kind == "photo" and resolved[2] is not None:
            _check_image(resolved[2].data)
        reply_to = self._reply_target(chat, req.params)
        self._check_limits(req, chat)
        info, media = self._store_media(req, chat, kind, kind, resolved)
        entry = self._bot_message(
            chat,
            req,
            kind=kind,
            text=caption,
            entities=entities,
            extra=self._media_extra(kind, info),
            media=media,
            reply_to=reply_to,
        )
        self._count_delivery(chat)
        return entry.message

    async def _api_sendPhoto(self, req: _Req) -> Any:
        return await self._send_media(req, "photo")

    async def _api_sendDocument(self, req: _Req) -> Any:
        return await self._send_media(req, "document")

    async def _api_sendMediaGroup(self, req: _Req) -> Any:
        chat = self._target(req)
        items = req.params["media"]
        if not 2 <= len(items) <= 10:  # the spec: "must include 2-10 items"
            raise ApiError(400, "Bad Request: wrong number of media items: 2 to 10 are allowed")
        resolved = [self._resolve_media(m["type"], m["media"], req.files) for m in items]
        for item, res in zip(items, resolved, strict=True):
            if item["type"] == "photo" and res[2] is not None:
                _check_image(res[2].data)
        reply_to = self._reply_target(chat, req.params)
        self._check_limits(req, chat)
        group_id = str(next(self._file_ids) * 1_000_003)
        out = []
        for item, res in zip(items, resolved, strict=True):
            kind = item["type"]
            info, media = self._store_media(req, chat, kind, "media", res)
            caption, entities = render_text(item.get("caption", ""), item.get("parse_mode"))
            extra = {"media_group_id": group_id, **self._media_extra(kind, info)}
            entry = self._bot_message(
                chat,
                req,
                kind=kind,
                text=caption,
                entities=entities,
                extra=extra,
                media=media,
                reply_to=reply_to,
            )
            out.append(entry.message)
        self._count_delivery(chat)
        return out

    async def _api_sendChatAction(self, req: _Req) -> Any:
        self._target(req)
        return True

    async def _api_copyMessage(self, req: _Req) -> Any:
        entry = await self._copy(req, forward=False)
        return {"message_id": entry.message_id}

    async def _api_forwardMessage(self, req: _Req) -> Any:
        entry = await self._copy(req, forward=True)
        return entry.message

    async def _copy(self, req: _Req, *, forward: bool) -> TranscriptEntry:
        p = req.params
        chat = self._target(req)
        source_chat = self._chat_for(p["from_chat_id"])
        source = source_chat.messages.get(p["message_id"])
        if source is None or source.deleted:
            verb = "forward" if forward else "copy"
            raise ApiError(400, f"Bad Request: message to {verb} not found")
        kind = source.kind
        sm = source.message
        text = sm.get("text", sm.get("caption", ""))
        entities = sm.get("entities", sm.get("caption_entities", []))
        if not forward and "caption" in p:
            text, entities = self._text(req, "caption")
        extra = {k: sm[k] for k in ("photo", "document", "sticker") if k in sm}
        if forward:
            origin = {"type": "user", "date": sm["date"], "sender_user": sm.get("from")}
            extra["forward_origin"] = origin
        reply_to = self._reply_target(chat, p)
        self._check_limits(req, chat)
        if forward and "reply_markup" in sm:
            p = {**p, "reply_markup": sm["reply_markup"]}
            req = req._replace(params=p)
        entry = self._bot_message(
            chat,
            req,
            kind=kind,
            text=text,
            entities=entities,
            extra=extra,
            media=source.media,
            reply_to=reply_to,
        )
        self._count_delivery(chat)
        return entry

    # -- editing and deleting

    async def _api_editMessageText(self, req: _Req) -> Any:
        target = self._editable(req)
        if target is None:
            return True
        chat, entry = target
        if entry.kind != "text":
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text, entities = self._text(req, "text")
        inline = _inline(req.params)
        if text == entry.text and entities == entry.entities and inline == entry.markup:
            raise ApiError(400, _NOT_MODIFIED)
        return self._apply_edit(
            chat, entry, kind="text", text=text, entities=entities, inline=inline
        )

    async def _api_editMessageCaption(self, req: _Req) -> Any:
        target = self._editable(req)
        if target is None:
            return True
        chat, entry = target
        if entry.kind == "text":
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption, entities = self._text(req, "caption")
        inline = _inline(req.params)
        old = entry.message.get("caption", "")
        if caption == old and entities == entry.entities and inline == entry.markup:
            raise ApiError(400, _NOT_MODIFIED)
        return self._apply_edit(
            chat, entry, kind=entry.kind, text=caption, entities=entities, inline=inline
        )

    async def _api_editMessageReplyMarkup(self, req: _Req) -> Any:
        target = self._editable(req)
        if target is None:
            return True
        chat, entry = target
        inline = _inline(req.params)
        if inline == entry.markup:
            raise ApiError(400, _NOT_MODIFIED)
        text = entry.message.get("text", entry.message.get("caption", ""))
        return self._apply_edit(
            chat, entry, kind=entry.kind, text=text, entities=entry.entities, inline=inline
        )

    async def _api_editMessageMedia(self, req: _Req) -> Any:
        target = self._editable(req)
        if target is None:
            return True
        chat, entry = target
        item = req.params["media"]
        kind = item["type"]
        resolved = self._resolve_media(kind, item["media"], req.files)
        if kind == "photo" and resolved[2] is not None:
            _check_image(resolved[2].data)
        caption, entities = render_text(item.get("caption", ""), item.get("parse_mode"))
        inline = _inline(req.params)
        if (
            resolved[1] is not None
            and entry.media is not None
            and resolved[1].file_id == entry.media.file_id
            and caption == entry.message.get("caption", "")
            and inline == entry.markup
        ):
            raise ApiError(400, _NOT_MODIFIED)
        info, media = self._store_media(req, chat, kind, "media", resolved)
        return self._apply_edit(
            chat,
            entry,
            kind=kind,
            text=caption,
            entities=entities,
            inline=inline,
            extra=self._media_extra(kind, info),
            media=media,
        )

    async def _api_deleteMessage(self, req: _Req) -> Any:
        chat = self._chat_for(req.params["chat_id"])
        entry = chat.messages.get(req.params["message_id"])
        if entry is None or entry.deleted:
            raise ApiError(400, "Bad Request: message to delete not found")
        entry.deleted = True
        self._next_seq()
        return True

    async def _api_deleteMessages(self, req: _Req) -> Any:
        chat = self._chat_for(req.params["chat_id"])
        for mid in req.params["message_ids"]:
            entry = chat.messages.get(mid)
            if entry is not None:
                entry.deleted = True
        self._next_seq()
        return True

    # -- callback queries

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

    # -- chats and members

    async def _api_getChat(self, req: _Req) -> Any:
        chat = self._chat_for(req.params["chat_id"])
        return {
            **chat.obj,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _member(self, chat: _Chat, user_id: int) -> dict[str, Any]:
        if user_id == self.bot_id:
            if chat.type != "private" and chat.bot_is_admin:
                return _administrator(self.bot_user)
            return {"status": "member", "user": self.bot_user}
        user = self._users.get(user_id)
        if user is None:
            raise ApiError(400, "Bad Request: user not found")
        if chat.type == "private":
            status = "member" if user_id == chat.id else "left"
            return {"status": status, "user": user.as_dict()}
        if user_id == chat.owner:
            return {"status": "creator", "user": user.as_dict(), "is_anonymous": False}
        if user_id in chat.admins:
            return _administrator(user.as_dict())
        if user_id in chat.members:
            return {"status": "member", "user": user.as_dict()}
        return {"status": "left", "user": user.as_dict()}

    async def _api_getChatMember(self, req: _Req) -> Any:
        chat = self._chat_for(req.params["chat_id"])
        return self._member(chat, req.params["user_id"])

    async def _api_getChatAdministrators(self, req: _Req) -> Any:
        chat = self._chat_for(req.params["chat_id"])
        if chat.type == "private":
            raise ApiError(400, "Bad Request: there are no administrators in the private chat")
        ids = ([chat.owner] if chat.owner else []) + [a for a in chat.admins if a != chat.owner]
        result = [self._member(chat, uid) for uid in ids]
        if chat.bot_is_admin:
            result.append(self._member(chat, self.bot_id))
        return result

    async def _api_getChatMemberCount(self, req: _Req) -> Any:
        chat = self._chat_for(req.params["chat_id"])
        return 2 if chat.type == "private" else len(chat.members) + 1

    async def _api_getFile(self, req: _Req) -> Any:
        info = self._files.get(req.params["file_id"])
        if info is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": req.params["file_id"],
            "file_unique_id": info.file_unique_id,
            "file_size": info.size,
            "file_path": info.file_path,
        }

    # -- everything else

    async def _generic(self, req: _Req) -> Any:
        returns = self.spec.method_returns(req.method)
        if req.method.startswith("send") and returns == ["Message"]:
            # sendLocation, sendVideo, sendPoll...: a plain message of that kind
            kind = req.method[len("send") :].lower()
            chat = self._target(req)
            caption, entities = self._text(req, "caption")
            media = None
            resolved = None
            if kind in req.params:
                try:
                    resolved = self._resolve_media(kind, req.params[kind], req.files)
                except ApiError:
                    resolved = None  # not a file parameter (e.g. sendDice emoji)
            self._check_limits(req, chat)
            if resolved is not None:
                _, media = self._store_media(req, chat, kind, kind, resolved)
            entry = self._bot_message(
                chat, req, kind=kind, text=caption, entities=entities, media=media
            )
            self._count_delivery(chat)
            return entry.message
        if returns not in (["Boolean"], ["True"]):
            self.unimplemented.append(req.method)
        if "chat_id" in req.params and isinstance(req.params["chat_id"], int):
            self._chat_for(req.params["chat_id"])
        return True

    # ------------------------------------------------------------------ webhook

    async def _webhook_loop(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        delay = 0.05
        while not self._stopping:
            cfg = self.webhook
            if cfg is None or not cfg.deliver:
                return
            if not self._queue:
                self._queue_event.clear()
                await self._queue_event.wait()
                continue
            update = self._queue[0]
            headers = (
                {"X-Telegram-Bot-Api-Secret-Token": cfg.secret_token} if (cfg.secret_token) else {}
            )
            url = cfg.url
            if self.webhook_targets:
                url = self.webhook_targets[self._webhook_turn % len(self.webhook_targets)]
                self._webhook_turn += 1
            try:
                async with self._http.post(
                    url,
                    json=update,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=30),
                ) as resp:
                    status = resp.status
                    ctype = resp.headers.get("Content-Type", "")
                    body = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                cfg.last_error_date = int(time.time())
                cfg.last_error_message = f"Connection failed: {exc}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if not 200 <= status < 300:
                cfg.last_error_date = int(time.time())
                cfg.last_error_message = f"Wrong response from the webhook: {status}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.05
            if self._queue and self._queue[0] is update:
                self._queue.popleft()
            cfg.delivered += 1
            await self._webhook_reply(ctype, body)

    async def _webhook_reply(self, ctype: str, body: bytes) -> None:
        """A bot may answer a webhook request with one method call, as JSON or multipart."""
        params: dict[str, Any] = {}
        files: dict[str, UploadedFile] = {}
        if not body.strip():
            return
        if ctype.startswith("application/json"):
            try:
                data = json.loads(body)
            except ValueError:
                return
            if not isinstance(data, dict):
                return
            params = dict(data)
        elif ctype.startswith("multipart/form-data"):
            params, files = _parse_multipart(ctype, body)
        method = params.pop("method", None)
        if isinstance(method, str) and method:
            await self._process(method, params, files)


# --------------------------------------------------------------------------- helpers


async def _read_params(
    request: web.Request,
) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    params: dict[str, Any] = dict(request.query)
    files: dict[str, UploadedFile] = {}
    if request.method != "POST" or not request.body_exists:
        return params, files
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError as exc:
            raise ValueError("can't parse JSON body") from exc
        if not isinstance(body, dict):
            raise ValueError("JSON body must be an object")
        params.update(body)
        return params, files
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            files[key] = UploadedFile(key, value.filename, value.content_type, value.file.read())
        else:
            params[key] = value
    return params, files


def _parse_multipart(ctype: str, body: bytes) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
    )
    params: dict[str, Any] = {}
    files: dict[str, UploadedFile] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename:
            files[name] = UploadedFile(name, filename, part.get_content_type(), payload)
        else:
            params[name] = payload.decode("utf-8")
    return params, files


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


def _loggable(value: Any) -> Any:
    if isinstance(value, UploadedFile):
        # keep the call log light: the bytes are in the file registry
        return f"<upload {value.filename} ({len(value.data)} bytes)>"
    return value


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


def _prune(window: deque[float], horizon: float) -> None:
    while window and window[0] <= horizon:
        window.popleft()


def _shallow(message: dict[str, Any]) -> dict[str, Any]:
    # a replied-to message never carries its own reply_to_message
    return {k: v for k, v in message.items() if k != "reply_to_message"}


def _set_text(msg: dict[str, Any], kind: str, text: str, entities: list[dict[str, Any]]) -> None:
    if kind == "text":
        msg["text"] = text
        if entities:
            msg["entities"] = entities
    elif text:
        msg["caption"] = text
        if entities:
            msg["caption_entities"] = entities


def _shown(kind: str, text: str) -> str:
    return text if kind == "text" or text else f"[{kind}]"


def _has_keyboard(markup: Any) -> bool:
    return isinstance(markup, dict) and "keyboard" in markup


def _inline(params: dict[str, Any]) -> dict[str, Any] | None:
    markup = params.get("reply_markup")
    return markup if isinstance(markup, dict) and "inline_keyboard" in markup else None


def _button_rows(inline: dict[str, Any] | None) -> list[list[str]]:
    if not inline:
        return []
    return [[b.get("text", "") for b in row] for row in inline.get("inline_keyboard", [])]


def _command_entities(text: str) -> list[dict[str, Any]]:
    if "/" not in text:
        return []
    out = []
    for m in _COMMAND_RE.finditer(text):
        offset = len(text[: m.start()].encode("utf-16-le")) // 2
        length = len(m.group(0).encode("utf-16-le")) // 2
        out.append({"type": "bot_command", "offset": offset, "length": length})
    return out


def _administrator(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": "administrator",
        "user": user,
        "can_be_edited": False,
        "is_anonymous": False,
        "can_manage_chat": True,
        "can_delete_messages": True,
        "can_manage_video_chats": True,
        "can_restrict_members": True,
        "can_promote_members": False,
        "can_change_info": True,
        "can_invite_users": True,
        "can_post_stories": False,
        "can_edit_stories": False,
        "can_delete_stories": False,
        "can_pin_messages": True,
        # Bot API 10.2, newer than api.json, but required by aiogram 3.31
        "can_send_welcome_messages": False,
    }


def _image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, JPEG, GIF, BMP or WebP; raises ApiError otherwise."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"BM" and len(data) >= 26:
        return (
            int.from_bytes(data[18:22], "little"),
            abs(int.from_bytes(data[22:26], "little", signed=True)),
        )
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return 512, 512  # not worth decoding: only the format matters here
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (
                0xC0,
                0xC1,
                0xC2,
                0xC3,
                0xC5,
                0xC6,
                0xC7,
                0xC9,
                0xCA,
                0xCB,
                0xCD,
                0xCE,
                0xCF,
            ):
                return (
                    int.from_bytes(data[i + 7 : i + 9], "big"),
                    int.from_bytes(data[i + 5 : i + 7], "big"),
                )
            if marker in (0xD8, 0x01, 0xFF) or 0xD0 <= marker <= 0xD7:
                i += 1 if marker == 0xFF else 2
                continue
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")


def _check_image(data: bytes) -> None:
    width, height = _image_size(data)
    if (
        width <= 0
        or height <= 0
        or width + height > 10_000
        or max(width, height) > 20 * min(width, height)
    ):
        raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
