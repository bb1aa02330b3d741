"""The charts drawn by the worker process are the charts `render_album` draws."""

from __future__ import annotations

import os

from bot.consultation import load_consultation
from bot.i18n import Translator
from bot.results.charts import render_album
from bot.results.render_worker import ProcessRenderer
from bot.results.tally import rank
from storage.repositories.tallies import Tally
from tests.support import DEFAULT_CONSULTATION


def test_the_worker_process_draws_what_render_album_draws() -> None:
    consultation = load_consultation(DEFAULT_CONSULTATION)
    counts = Tally(
        4,
        {"challenges": 4, "rehab_priority": 3},
        {("challenges", "inclusion"): 3, ("challenges", "nuisances"): 1},
    )
    results = rank(consultation, counts)
    drawer = ProcessRenderer()
    try:
        for lang in ("nl", "fr"):
            drawn = drawer(results, consultation, lang, Translator())
            assert drawn == render_album(results, consultation, lang, Translator())
        assert drawer._executor is not None
        pids = {p.pid for p in drawer._executor._processes.values()}  # type: ignore[attr-defined]
        assert len(pids) == 1 and os.getpid() not in pids  # one process, kept
    finally:
        drawer.close()
