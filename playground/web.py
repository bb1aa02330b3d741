"""The playground's web page and its small JSON API (aiohttp, loopback only, no build step)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.phases.rehearsal import AFTER
from playground.personas import (
    MODERATION_GROUP_ID,
    MODERATION_GROUP_TITLE,
    MODERATORS,
    PERSONAS,
)
from playground.runner import Playground, PlaygroundError
from playground.server import TranscriptEntry

STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
CLICK_TIMEOUT = 15.0
PLAYGROUND_KEY = web.AppKey("playground", Playground)


def message_view(entry: TranscriptEntry) -> dict[str, Any]:
    """One message as the page draws it (text with its entities, keyboard, media)."""
    msg = entry.message
    text = msg.get("text", msg.get("caption", ""))
    entities = msg.get("entities", msg.get("caption_entities", []))
    view: dict[str, Any] = {
        "id": entry.message_id,
        "from": entry.direction,
        "sender": msg.get("from", {}).get("first_name", ""),
        "kind": entry.kind,
        "text": text,
        "entities": entities,
        "edited": entry.edited,
        "date": msg.get("date"),
        "album": msg.get("media_group_id"),
        "buttons": [
            [
                {
                    "text": b.get("text", ""),
                    "url": b.get("url"),
                    "callback": "callback_data" in b,
                }
                for b in row
            ]
            for row in (entry.markup or {}).get("inline_keyboard", [])
        ],
    }
    if msg.get("photo"):
        view["photo"] = f"/api/file/{msg['photo'][-1]['file_id']}"
    if "document" in msg:
        doc = msg["document"]
        view["document"] = {
            "name": doc.get("file_name", "document"),
            "url": f"/api/file/{doc['file_id']}",
            "size": doc.get("file_size", 0),
        }
    return view


def _count(pg: Playground, chat_id: int) -> int:
    try:
        return len(pg.emulator.bot_messages(chat_id))
    except AssertionError:  # the emulator is being set up
        return 0


def _chats(pg: Playground) -> list[dict[str, Any]]:
    chats = [
        {
            "id": p.user_id,
            "key": p.key,
            "title": p.name,
            "label": p.label,
            "language": p.language,
            "role": p.role,
            "actors": [p.user_id],
            "messages": _count(pg, p.user_id),
        }
        for p in PERSONAS
    ]
    chats.insert(
        len(chats) - 1,  # the group between the moderators and the organiser
        {
            "id": MODERATION_GROUP_ID,
            "key": "group",
            "title": MODERATION_GROUP_TITLE,
            "label": "groupe des modérateurs",
            "language": "",
            "role": "group",
            "actors": [m.user_id for m in MODERATORS],
            "messages": _count(pg, MODERATION_GROUP_ID),
        },
    )
    return chats


def state_view(pg: Playground) -> dict[str, Any]:
    c = pg.consultation
    lang = c.source_language
    now = datetime.now(UTC)
    return {
        "seq": pg.emulator.seq,
        "status": pg.check(),
        "error": pg.error,
        "phase": pg.current_phase(),
        "chosen": pg.phase,
        "title": c.text(c.title, lang),
        "bot": pg.emulator.bot_username,
        "now": now.isoformat(),
        "phases": [
            {
                "id": p.id,
                "kind": str(p.kind),
                "title": c.text(p.title, lang),
                "starts": p.starts.astimezone(c.tz).strftime("%d/%m %H:%M"),
                "ends": p.ends.astimezone(c.tz).strftime("%d/%m %H:%M"),
            }
            for p in c.phases
        ]
        + [{"id": AFTER, "kind": AFTER, "title": "", "starts": "", "ends": ""}],
        "chats": _chats(pg),
        "users": {str(p.user_id): p.name for p in PERSONAS},
    }


def _playground(request: web.Request) -> Playground:
    return request.app[PLAYGROUND_KEY]


async def _body(request: web.Request) -> dict[str, Any]:
    # JSON only: a page of another site cannot post it without a CORS preflight we never grant.
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="JSON only")
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="invalid JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="a JSON object is expected")
    return body


def _chat_and_actor(pg: Playground, body: dict[str, Any]) -> tuple[int, int]:
    chats = {c["id"]: c for c in _chats(pg)}
    chat_id, actor = body.get("chat"), body.get("actor")
    if chat_id not in chats:
        raise web.HTTPBadRequest(text="unknown chat")
    actors = chats[chat_id]["actors"]
    if actor not in actors:
        actor = actors[0]
    return chat_id, actor


@web.middleware
async def loopback_only(request: web.Request, handler: Any) -> web.StreamResponse:
    # The Host header guards against DNS rebinding: only pages of 127.0.0.1 may call us.
    host = (request.host or "").rsplit(":", 1)[0]
    if host not in LOOPBACK:
        raise web.HTTPForbidden(text="the playground answers on 127.0.0.1 only")
    return await handler(request)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def get_state(request: web.Request) -> web.Response:
    return web.json_response(state_view(_playground(request)))


async def get_chat(request: web.Request) -> web.Response:
    pg = _playground(request)
    try:
        chat_id = int(request.match_info["chat"])
        entries = pg.emulator.transcript(chat_id)
    except (ValueError, AssertionError):
        raise web.HTTPNotFound(text="unknown chat") from None
    shown = [e for e in entries if not e.deleted]
    keyboard = next(
        (e.reply_keyboard for e in reversed(shown) if e.direction == "bot" and e.reply_keyboard),
        None,
    )
    return web.json_response(
        {
            "id": chat_id,
            "seq": pg.emulator.seq,
            "messages": [message_view(e) for e in shown],
            "keyboard": keyboard,
        }
    )


async def post_send(request: web.Request) -> web.Response:
    pg = _playground(request)
    body = await _body(request)
    chat_id, actor = _chat_and_actor(pg, body)
    text = str(body.get("text", "")).strip()
    if not text:
        raise web.HTTPBadRequest(text="empty message")
    user = pg.emulator.user(actor)
    if chat_id == actor:
        await user.send(text[:4096])
    else:
        await user.send_in_group(chat_id, text[:4096])
    return web.json_response({"ok": True})


async def post_click(request: web.Request) -> web.Response:
    pg = _playground(request)
    body = await _body(request)
    chat_id, actor = _chat_and_actor(pg, body)
    user = pg.emulator.user(actor)
    try:
        message = int(body.get("message", 0))
    except (TypeError, ValueError):
        raise web.HTTPBadRequest(text="message must be a message id") from None
    try:
        answer = await user.click(
            str(body.get("text", "")),
            message=message,
            chat_id=chat_id,
            timeout=CLICK_TIMEOUT,
        )
    except AssertionError as exc:
        # No answer in time (the bot restarting?) or a button that is gone: say so, briefly.
        return web.json_response({"ok": False, "error": str(exc).splitlines()[0]})
    return web.json_response(
        {"ok": True, "answer": {"text": answer.text, "alert": answer.show_alert, "url": answer.url}}
    )


async def post_timeline(request: web.Request) -> web.Response:
    pg = _playground(request)
    body = await _body(request)
    phase = body.get("phase")
    if phase not in [p.id for p in pg.original.phases] + [AFTER]:
        raise web.HTTPBadRequest(text="unknown phase")
    try:
        await pg.move_to(phase)
    except PlaygroundError as exc:
        return web.json_response({"ok": False, "error": str(exc)}, status=500)
    return web.json_response({"ok": True, "state": state_view(pg)})


async def post_reset(request: web.Request) -> web.Response:
    pg = _playground(request)
    await _body(request)
    try:
        await pg.reset()
    except PlaygroundError as exc:
        return web.json_response({"ok": False, "error": str(exc)}, status=500)
    return web.json_response({"ok": True, "state": state_view(pg)})


async def get_file(request: web.Request) -> web.Response:
    data = _playground(request).emulator.file_bytes(request.match_info["file_id"])
    if data is None:
        raise web.HTTPNotFound(text="no such file")
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return web.Response(body=data, content_type="image/png")
    if data[:2] == b"\xff\xd8":
        return web.Response(body=data, content_type="image/jpeg")
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": "attachment"},
    )


def build_app(pg: Playground) -> web.Application:
    app = web.Application(middlewares=[loopback_only])
    app[PLAYGROUND_KEY] = pg
    app.router.add_get("/", index)
    app.router.add_get("/api/state", get_state)
    app.router.add_get("/api/chat/{chat}", get_chat)
    app.router.add_get("/api/file/{file_id}", get_file)
    app.router.add_post("/api/send", post_send)
    app.router.add_post("/api/click", post_click)
    app.router.add_post("/api/timeline", post_timeline)
    app.router.add_post("/api/reset", post_reset)
    app.router.add_static("/static/", STATIC)
    return app


async def serve(pg: Playground, port: int, announce: Callable[[str], None] = print) -> None:
    """The page on 127.0.0.1:port, then the playground; runs until SIGINT/SIGTERM, and always
    stops the bot's process on the way out."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(build_app(pg), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        announce(f"ConsultBot playground: http://127.0.0.1:{port}  (starting the bot…)")
        starting = asyncio.create_task(pg.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a bot that cannot start: the error goes up
            announce(f"ready: open http://127.0.0.1:{port} (Ctrl+C to stop)")
            await stopping
        else:
            starting.cancel()
    finally:
        await pg.close()
        await runner.cleanup()
