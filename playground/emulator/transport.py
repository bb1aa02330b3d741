"""The emulator on the wire: the aiohttp server, and updates going out by long polling
(getUpdates) or pushed to a loopback webhook."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from email.parser import BytesParser
from email.policy import HTTP
from functools import partial
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web
from yarl import URL

from .model import ApiError, WebhookConfig, _Req
from .state import EmulatorState
from .validation import UploadedFile

log = logging.getLogger("consultbot.tests.emulator")

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_MAX_UPLOAD = 60 * 1024 * 1024


class TransportMixin(EmulatorState):
    """Start and stop the server, answer HTTP requests, hand updates to the bot."""

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

    @property
    def long_polling(self) -> bool:
        """A getUpdates is waiting for the next update."""
        return self._poll_waiter is not None and not self._poll_waiter.done()

    # -- HTTP: /bot<token>/<method> and /file/bot<token>/<path>

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
        raise NotImplementedError  # BotAPIEmulator validates and runs the call

    # -- long polling

    def _set_allowed(self, allowed: list[str] | None) -> None:
        if allowed is None:
            return  # "If not specified, the previous setting will be used"
        self._allowed = frozenset(allowed) if allowed else self._default_allowed()

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

    # -- webhook

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
        connections = int(p.get("max_connections", 40))
        if not 1 <= connections <= 100:
            raise ApiError(400, "Bad Request: bad webhook: max_connections must be 1-100")
        self.webhook = WebhookConfig(
            url,
            p.get("secret_token"),
            p.get("allowed_updates"),
            deliver=loopback,
            max_connections=connections,
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

    async def _webhook_loop(self) -> None:
        """As Telegram's webhook sender: the updates of one chat one at a time and in order,
        those of different chats at once, over at most `max_connections` requests. An update
        leaves the queue only when the bot answers 2xx; any other answer, or none, and it is
        sent again later (sooner at first, then at most every second here)."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        loop = asyncio.get_running_loop()
        busy: set[Any] = set()  # the chats with a request open
        retry_at: dict[int, float] = {}
        failures: dict[int, int] = {}
        posts: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping:
                cfg = self.webhook
                if cfg is None or not cfg.deliver:
                    return
                now, wake, seen = loop.time(), 1.0, set()
                for update in list(self._queue):
                    key = _queue_key(update)
                    if key in seen:
                        continue  # a chat's later updates wait for its first one
                    seen.add(key)
                    if key in busy:
                        continue
                    if len(busy) >= cfg.max_connections:
                        break
                    due = retry_at.get(update["update_id"], 0.0)
                    if due > now:
                        wake = min(wake, due - now)
                        continue
                    busy.add(key)
                    post = asyncio.create_task(self._webhook_post(cfg, update))
                    posts.add(post)
                    post.add_done_callback(posts.discard)
                    post.add_done_callback(
                        partial(self._webhook_posted, update, key, busy, retry_at, failures)
                    )
                self._queue_event.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wake):
                        await self._queue_event.wait()
        finally:
            for post in posts:
                post.cancel()
            await asyncio.gather(*posts, return_exceptions=True)

    def _webhook_posted(
        self,
        update: dict[str, Any],
        key: Any,
        busy: set[Any],
        retry_at: dict[int, float],
        failures: dict[int, int],
        post: asyncio.Task[bool],
    ) -> None:
        busy.discard(key)
        uid = update["update_id"]
        if not post.cancelled() and post.exception() is None and post.result():
            retry_at.pop(uid, None)
            failures.pop(uid, None)
            with contextlib.suppress(ValueError):
                self._queue.remove(update)
        else:  # Telegram: at once after a first failure, then with a growing delay
            failures[uid] = failures.get(uid, 0) + 1
            delay = 0.0 if failures[uid] == 1 else min(0.05 * 2 ** failures[uid], 1.0)
            retry_at[uid] = asyncio.get_running_loop().time() + delay
        self._queue_event.set()

    async def _webhook_post(self, cfg: WebhookConfig, update: dict[str, Any]) -> bool:
        """One attempt; True when the bot acknowledged the update."""
        assert self._http is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": cfg.secret_token} if cfg.secret_token else {}
        url = cfg.url
        if self.webhook_targets:
            url = self.webhook_targets[self._webhook_turn % len(self.webhook_targets)]
            self._webhook_turn += 1
        try:
            async with self._http.post(
                url, json=update, headers=headers, timeout=aiohttp.ClientTimeout(total=60)
            ) as resp:
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
                body = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            cfg.last_error_date = int(time.time())
            cfg.last_error_message = f"Connection failed: {exc}"
            cfg.refused.append((update["update_id"], 0))
            return False
        if not 200 <= status < 300:
            cfg.last_error_date = int(time.time())
            cfg.last_error_message = f"Wrong response from the webhook: {status}"
            cfg.refused.append((update["update_id"], status))
            return False
        cfg.delivered += 1
        cfg.acknowledged.append(update["update_id"])
        await self._webhook_reply(ctype, body)
        return True

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


def _queue_key(update: dict[str, Any]) -> Any:
    """Telegram's queue of an update: its chat (or its sender), else its own."""
    for kind, payload in update.items():
        if kind == "update_id" or not isinstance(payload, dict):
            continue
        chat = payload.get("chat") or (payload.get("message") or {}).get("chat")
        if isinstance(chat, dict) and "id" in chat:
            return ("chat", chat["id"])
        sender = payload.get("from") or payload.get("user")
        if isinstance(sender, dict) and "id" in sender:
            return ("chat", sender["id"])
    return ("update", update["update_id"])


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
