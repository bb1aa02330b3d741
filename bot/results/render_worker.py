"""Charts drawn by a worker process: matplotlib holds the GIL while it draws.

`ChartCache` draws an album off the event loop, in a thread; but matplotlib is Python and
holds the GIL for most of a second per chart, and the loop's thread waits for the GIL every
time it wants it back. While a survey is open every new submission changes the counts, so
the next /results draws the albums again: in bench/results_load.py (100,000 responses, a
/results storm while 50 members answer) a third of the bot's samples holding the GIL were
matplotlib's, and the taps' p99 rose by ~200 ms. Here the album is drawn by a process of its
own; the thread that `ChartCache` hands it to only waits for the PNGs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import cache
from typing import TYPE_CHECKING

from bot.consultation import Consultation
from bot.i18n import Translator
from bot.results.charts import render_album
from bot.results.tally import Results
from bot.worker_pool import stop_pool, worker_pool

if TYPE_CHECKING:
    from bot.results.communes import CommuneView


@cache
def _translator() -> Translator:
    """The worker's own translator (one holds context variables, which do not pickle)."""
    return Translator()


def draw_album(results: Results, consultation: Consultation, lang: str) -> list[bytes]:
    """In the worker process: `render_album` with the worker's translator."""
    return render_album(results, consultation, lang, _translator())


def draw_commune_album(
    view: CommuneView, consultation: Consultation, lang: str, name: str
) -> list[bytes]:
    """In the worker process: a commune's bars beside the network's."""
    from bot.results.commune_charts import render_commune_album

    return render_commune_album(view, consultation, lang, _translator(), name)


class ProcessRenderer:
    """A `charts.Renderer` drawing in a spawned worker process, started on the first album and
    kept (the thread that calls it blocks on the result, without the GIL)."""

    def __init__(self) -> None:
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # called from ChartCache's threads, a language each

    def __call__(
        self, results: Results, consultation: Consultation, lang: str, _translator: Translator
    ) -> list[bytes]:
        return self._run(draw_album, results, consultation, lang)

    def commune(
        self,
        view: CommuneView,
        consultation: Consultation,
        lang: str,
        _translator: Translator,
        name: str,
    ) -> list[bytes]:
        """A `charts.CommuneRenderer`, in the same worker."""
        return self._run(draw_commune_album, view, consultation, lang, name)

    def _run(self, draw: Callable[..., list[bytes]], *args: object) -> list[bytes]:
        with self._lock:
            if self._executor is None:
                self._executor = worker_pool()
            executor = self._executor
        try:
            return executor.submit(draw, *args).result()
        except BrokenProcessPool:
            # A dead worker (killed, out of memory) breaks its pool: a new one next time.
            with self._lock:
                if self._executor is executor:
                    self._executor = None
            raise

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            stop_pool(executor)
