"""Results on demand (/results, the menu's button): who may see them, and sending them."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BufferedInputFile, InputMediaPhoto, Message
from aiogram_dialog import DialogManager
from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import PhaseKind, Role
from bot.context import AppContext
from bot.i18n import Translator
from bot.results.charts import Album, ChartCache, chunks
from bot.results.commentary import CommentaryService
from bot.results.communes import (
    CommuneView,
    commune_summary_parts,
    hidden_sentence,
)
from bot.results.service import ResultsCache
from bot.results.tally import (
    free_text_block,
    free_text_questions,
    results_heading,
    results_intro,
    summary_parts,
)
from storage.repositories.commentary import CommentaryRecord
from storage.repositories.communes import CommuneRepository
from storage.repositories.members import MemberRecord


def may_see_results(app: AppContext, member: MemberRecord | None) -> bool:
    """Organisers any time (a preview); everybody else once the results phase has opened."""
    if member is None:
        return False
    if app.is_admin(member.id):
        return True
    return app.timeline.has_started(PhaseKind.RESULTS, app.clock())


def reader_commune(app: AppContext, member: MemberRecord | None, commune: str | None) -> str | None:
    """The commune whose results a reader gets beside the network's: an official's, when the
    consultation lists it (members and organisers get the network's)."""
    if member is None or Role.OFFICIAL not in member.role_names:
        return None
    return commune if app.communes.get(commune) else None


def results_texts(
    view: CommuneView, app: AppContext, lang: str, translator: Translator
) -> tuple[str | None, list[str]]:
    """(why the commune is not shown, if so; the summary's parts) for one reader."""
    c = app.consultation
    why = hidden_sentence(view, c, lang, translator)
    if view.local is not None:
        return why, commune_summary_parts(view, c, lang, translator)
    return why, summary_parts(view.network, c, lang, translator)


async def send_album(
    bot: Bot,
    chat_id: int,
    album: Album,
    caption: str,
    charts: ChartCache,
    lang: str,
    commune: str | None = None,
) -> None:
    """The charts as albums of up to ten photos; uploaded once per language (and commune)
    and counts, then sent again by the file_ids Telegram returned."""
    if not album.uploaded:
        async with charts.upload_lock(lang, commune):
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
    cache: ResultsCache,
    translator: Translator,
    session: AsyncSession,
    lang: str,
    member: MemberRecord | None,
    commentary: CommentaryService,
) -> None:
    """The results phase's text, the charts, the ranked counts, then the approved commentary;
    for organisers, the free-text answers too, and the commentary's review while it waits.
    Counted once per change of the data (`cache`), off the loop."""
    c = app.consultation
    found = await cache.by_commune(session, c, app.clock())
    mine = await CommuneRepository(session).of_member(member.id) if member else None
    view = found.view(reader_commune(app, member, mine.commune if mine else None))
    results = view.network
    # Read with the results, not after sending them: approved meanwhile, the commentary goes
    # to this reader by the outbox, and came twice when this reply took it as well.
    record = await commentary.current()
    intro = results_intro(c, lang)
    if intro:
        await message.answer(intro)
    why, parts = results_texts(view, app, lang, translator)
    if why:
        await message.answer(why)
    album = await charts.album(results, c, lang, translator, view)
    if album.pngs and message.bot is not None:
        heading = results_heading(c, lang, translator)
        await send_album(message.bot, message.chat.id, album, heading, charts, lang, view.key)
    for part in parts:
        await message.answer(part)
    after = commentary.reader_message(record, lang) if record and record.approved else None
    if after:
        await message.answer(after)
    if member is not None and app.is_admin(member.id):
        if free_text_questions(c):
            texts = await cache.free_texts(session, c, app.clock())
            await message.answer(free_text_block(c, texts.counts, texts.latest, lang, translator))
        if record is not None and not record.approved:
            await send_review(message, commentary, record, lang)


async def send_review(
    message: Message, commentary: CommentaryService, record: CommentaryRecord, lang: str
) -> None:
    """An organiser's review of the commentary: each language's draft, then the card."""
    for text, markup in commentary.review_messages(record, lang):
        await message.answer(text, reply_markup=markup)


async def send_results_to(message: Message, manager: DialogManager) -> None:
    """`send_results` from a dialog's callback (the menu's button, the commune asked first)."""
    from bot.ui.deps import (
        app_of,
        charts_of,
        lang_of,
        member_of,
        results_cache_of,
        services_of,
        session_of,
        translator_of,
    )

    await send_results(
        message,
        app_of(manager),
        charts_of(manager),
        results_cache_of(manager),
        translator_of(manager),
        session_of(manager),
        lang_of(manager),
        member_of(manager),
        services_of(manager).commentary,
    )
