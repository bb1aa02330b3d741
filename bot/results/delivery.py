"""The results as recipients get them, counted as Telegram counts them.

By default one message per recipient: the results phase's text and the ranked counts in words,
with a button "📊 Charts" that queues the album on demand (through the outbox, paced like any
send, by the file_ids of the broadcast's upload) and a "🌐" button per other language of the
consultation (the same message, in that language). A results phase may push the charts to some
roles instead (`push_charts:` in the file): those recipients get the text, the album (each
photo a message for Telegram) and the summary, as before.

Every button carries the version of the counts it was drawn from; the outbox's dedupe key of an
album asked for names the member, the language and that version: five taps, one album.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Consultation, Phase, PhaseKind
from bot.context import AppContext
from bot.i18n import LANGUAGE_NAMES, Translator
from bot.results.charts import ChartCache, chunks
from bot.results.tally import (
    MESSAGE_LIMIT,
    Results,
    pack,
    results_heading,
    results_intro,
    summary_parts,
)
from storage.repositories.members import MemberRepository
from storage.repositories.outbox import NewDelivery, OutboxRepository

# Albums asked for with 📊: no colon, so /status does not list each member's as a broadcast.
CHARTS_TOPIC = "charts"


class ResultsButton(CallbackData, prefix="rs"):
    action: str  # "c": the charts; "l": the summary in `lang`
    lang: str
    v: str  # the version of the counts (results_version)


def results_version(results: Results) -> str:
    """Short, and equal while the counts are: what an album asked for is deduplicated on."""
    return hashlib.sha256(repr(results.fingerprint()).encode()).hexdigest()[:10]


def summary_texts(
    results: Results,
    consultation: Consultation,
    lang: str,
    translator: Translator,
    note: str | None = None,
    commentary: str | None = None,
) -> list[str]:
    """The phase's text, `note` (e.g. "late"), the ranked counts and the approved commentary,
    in as few messages as Telegram's limit allows: one for the default consultation."""
    intro = results_intro(consultation, lang)
    blocks = [b for b in (intro, note) if b]
    parts = summary_parts(results, consultation, lang, translator)
    return pack([*blocks, *parts, *([commentary] if commentary else [])], MESSAGE_LIMIT)


def results_keyboard(
    app: AppContext, lang: str, version: str, translator: Translator
) -> InlineKeyboardMarkup:
    charts = InlineKeyboardButton(
        text=translator.gettext("📊 Graphiques", locale=lang),
        callback_data=ResultsButton(action="c", lang=lang, v=version).pack(),
    )
    others = [
        InlineKeyboardButton(
            text=f"🌐 {LANGUAGE_NAMES.get(other, other)}",
            callback_data=ResultsButton(action="l", lang=other, v=version).pack(),
        )
        for other in app.languages
        if other != lang
    ]
    return InlineKeyboardMarkup(inline_keyboard=[[charts], *([others] if others else [])])


def markup_json(markup: InlineKeyboardMarkup) -> str:
    return markup.model_dump_json(exclude_none=True)


def summary_deliveries(
    key: str, topic: str, member_id: int, texts: list[str], markup: str | None
) -> list[NewDelivery]:
    """The summary's messages; the buttons under the last one."""
    last = len(texts) - 1
    return [
        NewDelivery(
            f"{key}:{i}", topic, member_id, text=text, reply_markup=markup if i == last else None
        )
        for i, text in enumerate(texts)
    ]


async def album_ids(
    outbox: OutboxRepository,
    charts: ChartCache,
    results: Results,
    consultation: Consultation,
    lang: str,
    translator: Translator,
) -> list[int]:
    """The outbox's album rows of a language's charts for these counts: found when queued
    before (the broadcast, an earlier tap: their photos' file_ids with them), else added."""
    album = await charts.album(results, consultation, lang, translator)
    version = results_version(results)
    names = [f"results-{lang}-{version}-{i + 1}.png" for i in range(len(album.pngs))]
    known = await outbox.media_named(names)
    photos = []
    for i, (name, png) in enumerate(zip(names, album.pngs, strict=True)):
        found = known.get(name)
        photos.append(found or await outbox.add_media(name, png, file_id=album.file_ids[i]))
    albums = []
    for group in chunks(len(photos)):
        members = [photos[i] for i in group]
        albums.append(await outbox.album_of(members) or await outbox.add_album(members))
    return albums


def chart_deliveries(
    key: str, topic: str, member_id: int, albums: list[int], caption: str
) -> list[NewDelivery]:
    """The albums, the caption under the first one's first photo."""
    return [
        NewDelivery(
            key if j == 0 else f"{key}{j}",
            topic,
            member_id,
            text=caption if j == 0 else None,
            media_id=album,
        )
        for j, album in enumerate(albums)
    ]


async def charts_on_demand(
    session: AsyncSession,
    app: AppContext,
    charts: ChartCache,
    translator: Translator,
    results: Results,
    member_id: int,
    lang: str,
) -> bool:
    """Queue the album for a member who asked (📊); False when it was queued already for
    this language and these counts (the caller commits, then rings the outbox)."""
    c = app.consultation
    outbox = OutboxRepository(session)
    key = f"{c.id}:charts:{member_id}:{lang}:{results_version(results)}"
    if await outbox.delivery(key) is not None:
        return False
    albums = await album_ids(outbox, charts, results, c, lang, translator)
    caption = results_heading(c, lang, translator)
    await outbox.enqueue(
        chart_deliveries(key, CHARTS_TOPIC, member_id, albums, caption), app.clock()
    )
    return True


async def chart_pushers(session: AsyncSession, phase: Phase) -> set[int]:
    """The recipients the phase pushes the charts to (`push_charts:`)."""
    if not phase.push_charts:
        return set()
    return set(await MemberRepository(session).ids_with_roles(phase.push_charts))


async def summary_broadcast(
    app: AppContext,
    translator: Translator,
    results: Results,
    lang: str,
    members: list[int],
    topic: str,
    note: str | None = None,
    commentary: str | None = None,
) -> list[NewDelivery]:
    """The default results delivery: the summary in one message (as few as fit) per member,
    with its buttons."""
    c = app.consultation
    texts = summary_texts(results, c, lang, translator, note, commentary)
    markup = markup_json(results_keyboard(app, lang, results_version(results), translator))
    return [
        item
        for member_id in members
        for item in summary_deliveries(
            f"{c.id}:{topic}:{member_id}", topic, member_id, texts, markup
        )
    ]


@dataclass(frozen=True)
class ResultsPlan:
    """What the results broadcast will send, before it is sent."""

    recipients: int
    pushed: int  # of them, those the charts are pushed to
    messages: int  # as Telegram counts them (each photo of an album)
    per_chat: int  # the most messages one recipient gets


async def results_plan(
    session: AsyncSession, app: AppContext, translator: Translator, results: Results
) -> ResultsPlan | None:
    """The results phase's broadcast as it would go now: recipients, and the messages as
    Telegram counts them (the summary and the approved commentary in as few messages as fit,
    or text + album + summary + commentary for those the charts are pushed to)."""
    from bot.results.commentary_cards import commentary_message, reader_text
    from storage.repositories.commentary import CommentaryRepository
    from storage.repositories.members import recipients

    c = app.consultation
    phase = c.phase(PhaseKind.RESULTS)
    if phase is None:
        return None
    people = await recipients(session, phase.audience, c.source_language)
    pushed = await chart_pushers(session, phase)
    approved = await CommentaryRepository(session).get(c.id, phase.id)
    photos = len(results.questions)
    per_language: dict[tuple[str, bool], int] = {}
    messages = most = 0
    for member_id, lang in people:
        push = member_id in pushed
        if (lang, push) not in per_language:
            said = reader_text(c, approved, lang) if approved and approved.approved else None
            after = commentary_message(said, lang, translator) if said else None
            if push:
                intro = 1 if results_intro(c, lang) else 0
                summary = len(summary_parts(results, c, lang, translator))
                per_language[(lang, push)] = intro + photos + summary + (1 if after else 0)
            else:
                texts = summary_texts(results, c, lang, translator, commentary=after)
                per_language[(lang, push)] = len(texts)
        messages += per_language[(lang, push)]
        most = max(most, per_language[(lang, push)])
    return ResultsPlan(len(people), sum(1 for m, _ in people if m in pushed), messages, most)
