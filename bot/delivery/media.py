"""How one outbox delivery reaches Telegram: a text, a photo or an album.

A photo is uploaded once, by the first delivery that needs it (the others wait for its
file_id under the upload's lock), then sent by file_id: kept here and in the outbox's media
rows, so that a restarted sender uploads nothing again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiogram import Bot
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, InputMediaPhoto, Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery.ratelimit import RateLimiter
from storage.models import Delivery
from storage.repositories.outbox import OutboxRepository, album_items


class MediaSender:
    """Sends one claimed delivery; the limiter is told when an upload's reads delayed it."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bot: Bot,
        limiter: RateLimiter,
        paid: bool,
        on_photo_uploaded: Callable[[bytes, str], None] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.bot = bot
        self.limiter = limiter
        # Telegram's paid broadcasts: None leaves the parameter out of the request.
        self.paid: bool | None = paid or None
        # Told (bytes, file_id) when an album photo was uploaded: /results reuses it.
        self.on_photo_uploaded = on_photo_uploaded
        self.upload_locks: dict[int, asyncio.Lock] = {}
        self.file_ids: dict[int, str] = {}
        # An album's media id -> its photos' file_ids, once uploaded.
        self.album_file_ids: dict[int, list[str]] = {}

    def uploading(self, media_id: int) -> bool:
        """Whether the media's first upload is under way (its file_id not known yet)."""
        if media_id in self.file_ids or media_id in self.album_file_ids:
            return False
        lock = self.upload_locks.get(media_id)
        return lock is not None and lock.locked()

    async def send(self, row: Delivery) -> Message:
        """The row's message: a text, a photo or an album (the first photo's message)."""
        markup = (
            InlineKeyboardMarkup.model_validate(json.loads(row.reply_markup))
            if row.reply_markup
            else None
        )
        if row.media_id is None:
            return await self.bot.send_message(
                row.chat_id, row.text or "", reply_markup=markup, allow_paid_broadcast=self.paid
            )
        if row.media_id in self.album_file_ids:
            return await self._send_album(row, self.album_file_ids[row.media_id])
        file_id = self.file_ids.get(row.media_id)
        if file_id is not None:
            return await self.bot.send_photo(
                row.chat_id,
                file_id,
                caption=row.text,
                reply_markup=markup,
                allow_paid_broadcast=self.paid,
            )
        lock = self.upload_locks.setdefault(row.media_id, asyncio.Lock())
        async with lock:  # the first one uploads; the others wait, then reuse its file_id
            self.limiter.restamp(row.chat_id, row.is_group, row.weight)
            if row.media_id in self.file_ids:
                return await self.bot.send_photo(
                    row.chat_id,
                    self.file_ids[row.media_id],
                    caption=row.text,
                    reply_markup=markup,
                    allow_paid_broadcast=self.paid,
                )
            if row.media_id in self.album_file_ids:
                return await self._send_album(row, self.album_file_ids[row.media_id])
            async with self.sessionmaker() as session:
                media = await OutboxRepository(session).media(row.media_id)
            if media is None:
                return await self.bot.send_message(
                    row.chat_id, row.text or "", reply_markup=markup, allow_paid_broadcast=self.paid
                )
            items = album_items(media)
            if items is not None:
                return await self._upload_album(row, media.id, items)
            photo: str | BufferedInputFile = media.file_id or BufferedInputFile(
                media.data, filename=media.filename
            )
            self.limiter.restamp(row.chat_id, row.is_group, row.weight)  # after the media's read
            message = await self.bot.send_photo(
                row.chat_id,
                photo,
                caption=row.text,
                reply_markup=markup,
                allow_paid_broadcast=self.paid,
            )
            if media.file_id:
                self.file_ids[media.id] = media.file_id
            elif message.photo:
                self.file_ids[media.id] = message.photo[-1].file_id
                async with self.sessionmaker() as session:
                    await OutboxRepository(session).set_file_id(media.id, message.photo[-1].file_id)
                    await session.commit()
            return message

    async def _send_album(self, row: Delivery, photos: list[str | BufferedInputFile]) -> Message:
        """sendMediaGroup, the delivery's text as the first photo's caption; the first
        message stands for the album in the outbox's records."""
        media = [
            InputMediaPhoto(media=photo, caption=row.text if i == 0 else None)
            for i, photo in enumerate(photos)
        ]
        return (await self._media_group(row.chat_id, media))[0]

    async def _media_group(self, chat_id: int, media: list[InputMediaPhoto]) -> list[Message]:
        if len(media) == 1:  # sendMediaGroup takes 2 to 10 items
            return [
                await self.bot.send_photo(
                    chat_id,
                    media[0].media,
                    caption=media[0].caption,
                    allow_paid_broadcast=self.paid,
                )
            ]
        return list(
            await self.bot.send_media_group(
                chat_id,
                media,  # type: ignore[arg-type]
                allow_paid_broadcast=self.paid,
            )
        )

    async def _upload_album(self, row: Delivery, album_id: int, items: list[int]) -> Message:
        """The first send of an album (under its upload lock): photos Telegram does not hold
        yet are uploaded, and every file_id is kept for the next chats."""
        async with self.sessionmaker() as session:
            repo = OutboxRepository(session)
            photos = [await repo.media(i) for i in items]
        known = [p for p in photos if p is not None]
        sources: list[str | BufferedInputFile] = [
            p.file_id or BufferedInputFile(p.data, filename=p.filename) for p in known
        ]
        self.limiter.restamp(row.chat_id, row.is_group, row.weight)  # after the media's read
        media = [
            InputMediaPhoto(media=source, caption=row.text if i == 0 else None)
            for i, source in enumerate(sources)
        ]
        messages = await self._media_group(row.chat_id, media)
        file_ids = [m.photo[-1].file_id if m.photo else "" for m in messages]
        if len(file_ids) == len(known) and all(file_ids):
            self.album_file_ids[album_id] = list(file_ids)
            async with self.sessionmaker() as session:
                repo = OutboxRepository(session)
                for photo, file_id in zip(known, file_ids, strict=True):
                    if photo.file_id != file_id:
                        await repo.set_file_id(photo.id, file_id)
                await session.commit()
            if self.on_photo_uploaded is not None:
                for photo, file_id in zip(known, file_ids, strict=True):
                    self.on_photo_uploaded(photo.data, file_id)
        return messages[0]
