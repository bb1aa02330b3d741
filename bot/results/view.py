"""Results on demand (/results, the menu's button): who may see them, and sending them."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BufferedInputFile, InputMediaPhoto, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import PhaseKind
from bot.context import AppContext
from bot.i18n import Translator
from bot.results.charts import Album, ChartCache, chunks
from bot.results.commentary import CommentaryService
from bot.results.tally import (
    compute,
    free_text_block,
    free_text_questions,
    results_heading,
    results_intro,
    summary_parts,
)
from storage.repositories.commentary import CommentaryRecord
from storage.repositories.members import MemberRecord
from storage.repositories.survey import free_text_answers, free_text_counts

LATEST_FREE_TEXTS = 3


def may_see_results(app: AppContext, member: MemberRecord | None) -> bool:
    """Organisers any time (a preview); everybody else once the results phase has opened."""
    if member is None:
        return False
    if app.is_admin(member.id):
        return True
    return app.timeline.has_started(PhaseKind.RESULTS, app.clock())


async def send_album(
    bot: Bot, chat_id: int, album: Album, caption: str, charts: ChartCache, lang: str
) -> None:
    """The charts as albums of up to ten photos; uploaded once per language and counts,
    then sent again by the file_ids Telegram returned."""
    if not album.uploaded:
        async with charts.upload_lock(lang):
            if not album.uploaded:
                await _send_groups(bot, chat_id, album, caption, charts, lang)
                return
    await _send_groups(bot, chat_id, album, caption, charts, lang)


async def _send_groups(
    bot: Bot, chat_id: int, album: Album, caption: str, charts: ChartCache, lang: str
) -> None:
    for group in chunks(len(album.pngs)):
        media: list[InputMediaPhoto] = []
        for i in group:
            photo = album.file_ids[i] or BufferedInputFile(
                album.pngs[i], filename=f"results-{lang}-{i + 1}.png"
            )
            media.append(InputMediaPhoto(media=photo, caption=caption if i == 0 else None))
        if len(media) == 1:
            sent = [await bot.send_photo(chat_id, media[0].media, caption=media[0].caption)]
        else:
            sent = await bot.send_media_group(chat_id, media)  # type: ignore[arg-type]
        for i, message in zip(group, sent, strict=False):
            if message.photo and album.file_ids[i] is None:
                charts.remember(album.pngs[i], message.photo[-1].file_id)


async def send_results(
    message: Message,
    app: AppContext,
    charts: ChartCache,
    translator: Translator,
    session: AsyncSession,
    lang: str,
    member: MemberRecord | None,
    commentary: CommentaryService,
) -> None:
    """The results phase's text, the charts, the ranked counts, then the approved commentary;
    for organisers, the free-text answers too, and the commentary's review while it waits."""
    c = app.consultation
    results = await compute(session, c)
    intro = results_intro(c, lang)
    if intro:
        await message.answer(intro)
    album = await charts.album(results, c, lang, translator)
    if album.pngs and message.bot is not None:
        heading = results_heading(c, lang, translator)
        await send_album(message.bot, message.chat.id, album, heading, charts, lang)
    for part in summary_parts(results, c, lang, translator):
        await message.answer(part)
    record = await commentary.current()
    after = commentary.reader_message(record, lang) if record and record.approved else None
    if after:
        await message.answer(after)
    if member is not None and app.is_admin(member.id):
        text_questions = [q.id for q in free_text_questions(c)]
        if text_questions:
            counts = await free_text_counts(session, c.id)
            latest = {
                qid: await free_text_answers(session, c.id, [qid], LATEST_FREE_TEXTS)
                for qid in text_questions
            }
            await message.answer(free_text_block(c, counts, latest, lang, translator))
        if record is not None and not record.approved:
            await send_review(message, commentary, record, lang)


async def send_review(
    message: Message, commentary: CommentaryService, record: CommentaryRecord, lang: str
) -> None:
    """An organiser's review of the commentary: each language's draft, then the card."""
    for text, markup in commentary.review_messages(record, lang):
        await message.answer(text, reply_markup=markup)
