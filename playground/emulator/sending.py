"""Bot API methods that send: messages, media, albums, copies and forwards."""

from __future__ import annotations

from typing import Any

from .files import FilesMixin, _check_image
from .html import render_text
from .limits import LimitsMixin
from .messages import MessagesMixin
from .model import ApiError, TranscriptEntry, _Req


class SendingMixin(MessagesMixin, FilesMixin, LimitsMixin):
    """sendMessage, sendPhoto, sendDocument, sendMediaGroup, sendChatAction, copyMessage,
    forwardMessage. Any other send* is not modelled (a violation: see server.py)."""

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
        self._check_limits(req, chat, messages=len(items))  # each item counts
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
