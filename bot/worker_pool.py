"""Worker processes for work that would hold the event loop (charts, exports).

Spawned, not forked (the bot's threads and connections stay behind); at a lower CPU priority
(the members' taps come first); and gone with the bot. A worker waits for jobs on a pipe from
its pool's thread in the bot, and a bot killed with SIGKILL never closes it: each crash left
its chart and export workers running, 60–140 MB each (tests/test_worker_pool.py).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from storage.hot_path.statements import BACKGROUND_NICE

WATCH_EVERY = 1.0  # seconds between two looks at the parent


def worker_pool() -> ProcessPoolExecutor:
    """One background worker process, started on the first job."""
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(BACKGROUND_NICE,),
    )


def _start_worker(nice: int) -> None:
    os.nice(nice)
    parent = os.getppid()

    def exit_with_parent() -> None:
        # Orphaned, a process is given another parent: the bot is gone.
        while os.getppid() == parent:
            time.sleep(WATCH_EVERY)
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="exit-with-parent", daemon=True).start()
