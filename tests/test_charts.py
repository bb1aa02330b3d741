"""Charts off the hot path: rendered in a worker thread once per language and counts, then
re-sent by the file_ids Telegram returned."""

from __future__ import annotations

import asyncio
import itertools
import threading
from datetime import UTC, datetime
from typing import Any

from aiogram.types import BufferedInputFile, Chat, InputMediaPhoto, Message, PhotoSize

from bot.consultation import Consultation
from bot.i18n import Translator
from bot.results.charts import ChartCache, render_album
from bot.results.communes import ByCommune
from bot.results.tally import Results, rank
from bot.results.view import send_album
from storage.repositories.tallies import Tally
from tests.test_results import C, seed_results


class PhotoBot:
    """Answers sendMediaGroup / sendPhoto like Telegram: one file_id per uploaded photo."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []  # per call: "upload" or "file_id" for each photo
        self.ids = itertools.count(1)

    def _message(self, chat_id: int, media: str | BufferedInputFile) -> Message:
        file_id = media if isinstance(media, str) else f"AgAC{next(self.ids):04d}"
        return Message(
            message_id=next(self.ids),
            date=datetime.now(UTC),
            chat=Chat(id=chat_id, type="private"),
            photo=[PhotoSize(file_id=file_id, file_unique_id=file_id, width=1080, height=800)],
        )

    async def send_media_group(self, chat_id: int, media: list[InputMediaPhoto]) -> list[Message]:
        assert 2 <= len(media) <= 10
        self.sent.append(["file_id" if isinstance(m.media, str) else "upload" for m in media])
        return [self._message(chat_id, m.media) for m in media]  # type: ignore[arg-type]

    async def send_photo(self, chat_id: int, photo: Any, caption: str | None = None) -> Message:
        self.sent.append(["file_id" if isinstance(photo, str) else "upload"])
        return self._message(chat_id, photo)


async def test_rendering_runs_in_a_thread_and_the_loop_stays_responsive() -> None:
    threads: list[int] = []

    def render(results: Results, c: Consultation, lang: str, tr: Translator) -> list[bytes]:
        threads.append(threading.get_ident())
        return render_album(results, c, lang, tr)  # the real matplotlib work, ~1 s

    cache = ChartCache(render=render)
    ticks = 0
    rendering = asyncio.create_task(cache.album(seed_results(), C, "fr", Translator()))

    async def tick() -> None:
        nonlocal ticks
        while not rendering.done():
            ticks += 1
            await asyncio.sleep(0.01)

    await asyncio.gather(rendering, tick())
    assert threads and threads[0] != threading.get_ident()
    # The event loop kept turning while matplotlib drew seven charts (it would not tick
    # once if the render ran on the loop).
    assert ticks >= 5, ticks
    assert len(rendering.result().pngs) == 7


async def test_an_album_is_rendered_once_per_language_and_counts() -> None:
    calls: list[str] = []

    def render(results: Results, c: Consultation, lang: str, tr: Translator) -> list[bytes]:
        calls.append(lang)
        return [f"{lang}:{q.question.id}:{q.seen}".encode() for q in results.questions]

    cache = ChartCache(render=render)
    tr = Translator()
    results = seed_results()
    # Twenty members tapping Results together: one render.
    albums = await asyncio.gather(*(cache.album(results, C, "nl", tr) for _ in range(20)))
    assert calls == ["nl"] and all(a is albums[0] for a in albums)
    await cache.album(results, C, "en", tr)
    assert calls == ["nl", "en"]
    # A new submission changes the counts: drawn again.
    more = rank(C, Tally(results.respondents + 1, {"challenges": 11}, {}))
    await cache.album(more, C, "nl", tr)
    assert calls == ["nl", "en", "nl"] and cache.renders == 3


def counting_cache() -> tuple[ChartCache, list[tuple[str, int]]]:
    """A cache whose albums record (language, respondents) as drawn, their bytes made of both."""
    calls: list[tuple[str, int]] = []

    def render(results: Results, c: Consultation, lang: str, tr: Translator) -> list[bytes]:
        calls.append((lang, results.respondents))
        return [f"{lang}:{results.respondents}:{q.question.id}".encode() for q in results.questions]

    return ChartCache(render=render), calls


async def test_new_results_have_the_albums_asked_for_drawn_ahead() -> None:
    """`prepare` (a large consultation's results refreshed in the background): the albums
    /results asked for since the previous refresh, drawn again for the new counts; with none
    asked for, the network's in each language. /results then finds them drawn."""
    cache, calls = counting_cache()
    tr = Translator()
    results = seed_results()
    tallies = {None: Tally(results.respondents, {}, {})}
    await cache.prepare(ByCommune(C, tallies, 5), C, tr)
    assert sorted(calls) == sorted((lang, results.respondents) for lang in C.languages)
    calls.clear()
    first = ByCommune(C, tallies, 5)
    for lang in ("nl", "en", "nl"):  # only Dutch and English asked for since: drawn already
        await cache.album(first.network, C, lang, tr, first.view(None))
    assert calls == []
    more = {None: Tally(results.respondents + 1, {}, {})}
    found = ByCommune(C, more, 5)
    await cache.prepare(found, C, tr)
    assert sorted(calls) == [("en", results.respondents + 1), ("nl", results.respondents + 1)]
    await cache.album(found.network, C, "nl", tr, found.view(None))
    assert cache.renders == len(C.languages) + 2  # /results found it drawn
    calls.clear()
    latest = {None: Tally(results.respondents + 2, {}, {})}
    await cache.prepare(ByCommune(C, latest, 5), C, tr)  # only Dutch asked for since
    assert calls == [("nl", results.respondents + 2)]


async def test_the_previous_results_album_is_kept_while_new_results_are_prepared() -> None:
    """While new results' albums are drawn ahead (`prepare`), /results still serves the
    previous results: their album is the one kept before, not drawn again (which had the
    albums of the two counts drawn in turn, and a /results wait 4-5 s behind the drawing)."""
    cache, calls = counting_cache()
    tr = Translator()
    n = seed_results().respondents
    old = ByCommune(C, {None: Tally(n, {}, {})}, 5)
    new = ByCommune(C, {None: Tally(n + 1, {}, {})}, 5)
    before = await cache.album(old.network, C, "fr", tr, old.view(None))
    await cache.prepare(new, C, tr)
    assert calls == [("fr", n), ("fr", n + 1)]
    assert await cache.album(old.network, C, "fr", tr, old.view(None)) is before
    after = await cache.album(new.network, C, "fr", tr, new.view(None))
    assert calls == [("fr", n), ("fr", n + 1)] and after is not before
    cache.remember(after.pngs[0], "file-new")
    cache.remember(before.pngs[0], "file-old")
    assert (before.file_ids[0], after.file_ids[0]) == ("file-old", "file-new")


async def test_a_second_results_reuses_the_file_ids_instead_of_uploading() -> None:
    cache = ChartCache()
    bot = PhotoBot()
    album = await cache.album(seed_results(), C, "en", Translator())
    await send_album(bot, 7, album, "Results", cache, "en")
    assert bot.sent == [["upload"] * 7]
    again = await cache.album(seed_results(), C, "en", Translator())
    await send_album(bot, 8, again, "Results", cache, "en")
    assert bot.sent[1] == ["file_id"] * 7
    assert cache.renders == 1


async def test_members_tapping_together_upload_the_album_once() -> None:
    cache = ChartCache()
    bot = PhotoBot()
    album = await cache.album(seed_results(), C, "fr", Translator())
    await asyncio.gather(*(send_album(bot, chat, album, "R", cache, "fr") for chat in range(5)))
    assert sorted(bot.sent) == [["file_id"] * 7] * 4 + [["upload"] * 7]


async def test_a_chart_the_broadcast_uploaded_is_not_uploaded_again() -> None:
    """The outbox reports its uploads (bytes, file_id): /results then sends by file_id, and
    a question whose counts did not change keeps its file_id in a new album."""
    cache = ChartCache()
    album = await cache.album(seed_results(), C, "nl", Translator())
    for i, png in enumerate(album.pngs):
        cache.remember(png, f"from-outbox-{i}")
    bot = PhotoBot()
    await send_album(bot, 9, album, "R", cache, "nl")
    assert bot.sent == [["file_id"] * 7]


async def test_file_ids_of_charts_no_album_shows_are_forgotten() -> None:
    def render(results: Results, c: Consultation, lang: str, tr: Translator) -> list[bytes]:
        return [f"{results.respondents}:{q.question.id}".encode() for q in results.questions]

    cache = ChartCache(render=render)
    tr = Translator()
    for n in range(40):  # forty submissions, each one a new album with its uploads
        album = await cache.album(rank(C, Tally(n, {}, {})), C, "fr", tr)
        for png in album.pngs:
            cache.remember(png, f"id-{n}")
    assert len(cache.uploaded) <= 200
    assert all(cache.uploaded.get(d) == "id-39" for d in album.digests)
