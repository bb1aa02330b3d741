"""A Telegram Bot API emulator for end-to-end tests and benchmarks.

An aiohttp server on 127.0.0.1 that a real bot process talks to through
`TELEGRAM_API_URL`. Every call is checked against the Bot API description
(see spec.py); simulated users produce real updates (long polling or a loopback
webhook); what the bot sends is kept as per-chat transcripts that tests can read,
wait for and click on. Faults (429/403/5xx) and Telegram's rate limits can be
injected to test the bot's delivery logic.

BotAPIEmulator is assembled from one mixin per concern; this module adds the set-up of
users and groups, and the validation and dispatch of each call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from .actions import UserActionsMixin
from .chats import ChatsMixin
from .editing import EditingMixin
from .model import ApiError, Call, Violation, _Chat, _Req
from .sending import SendingMixin
from .transport import TransportMixin
from .users import SimUser
from .validation import CallValidation, UploadedFile

log = logging.getLogger("consultbot.tests.emulator")


class BotAPIEmulator(TransportMixin, UserActionsMixin, SendingMixin, EditingMixin, ChatsMixin):
    """The emulated Bot API server. Use `async with BotAPIEmulator() as emu:`."""

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

    # -- one call: validated against the spec, then run (or failed by an injected fault)

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
            # Telegram still accepts what is deprecated: the call works, the test fails.
            for dep in check.deprecated:
                self.violations.append(Violation(method, dep.param, dep.message))
            if check.errors:
                for err in check.errors:
                    self.violations.append(Violation(method, err.param, err.message))
                status, body = 400, _error(400, "Bad Request: " + check.errors[0].description)
            elif method not in self._handlers:
                # Valid, but any answer would be made up: a test must not pass on it.
                self.violations.append(
                    Violation(method, "", "not modelled by the emulator (playground/emulator/)")
                )
                description = f"Bad Request: {method} is not modelled by the Bot API emulator"
                status, body = 400, _error(400, description)
            else:
                logged = {k: _loggable(v) for k, v in check.params.items()}
                req = _Req(method, check.params, files, check.rendered)
                status, body = await self._execute(req)
        call = Call(started, method, logged, body)
        self.calls.append(call)
        self._calls_by_method.setdefault(method, []).append(call)
        return status, body

    async def _execute(self, req: _Req) -> tuple[int, dict[str, Any]]:
        if not await self._wait_if_held(req):
            return 502, _error(502, "Bad Gateway")
        fault = self._matching_fault(req)
        try:
            if fault is not None:
                fault.hits += 1
                self._told_to_wait(req, fault)
                desc, parameters = fault.response()
                raise ApiError(fault.code, desc, parameters)
            result = await self._handlers[req.method](req)
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
