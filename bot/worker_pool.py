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
from concurrent.futures import Executor, ProcessPoolExecutor

from storage.hot_path.statements import BACKGROUND_NICE, background_priority

WATCH_EVERY = 1.0  # seconds between two looks at the parent
# The worker's priority when it began, before its initializer (for tests/test_worker_pool.py).
started_nice: int | None = None


def worker_pool() -> ProcessPoolExecutor:
    """One background worker process, started now at the lower priority.

    A process takes the priority of the thread that starts it, and a worker's start-up (the
    interpreter, then the bot's modules the spawn imports: ~0.6 s of CPU) comes before its
    initializer. Started by the first job from the event loop's thread, a worker took that
    CPU from the members' taps: an organiser's first /export in a crowd. Here it is started
    from a thread of lower priority."""
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(BACKGROUND_NICE,),
    )

    def start() -> None:
        background_priority()
        pool.submit(int)  # spawns the worker (and the pool's thread, at this priority too)

    starter = threading.Thread(target=start, name="worker-start")
    starter.start()
    starter.join()
    return pool


def priority_at_start() -> int | None:
    """In a worker: its priority (nice) when it began, before its initializer ran."""
    return started_nice


def _start_worker(nice: int) -> None:
    global started_nice
    started_nice = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, 0, nice)  # where priorities are not per thread
    parent = os.getppid()

    def exit_with_parent() -> None:
        # Orphaned, a process is given another parent: the bot is gone.
        while os.getppid() == parent:
            time.sleep(WATCH_EVERY)
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="exit-with-parent", daemon=True).start()


def stop_pool(pool: Executor) -> None:
    """Shut the pool without waiting, and end its workers now: at exit, concurrent.futures
    waits for a job under way (a minute-long export) before the interpreter may leave, and a
    stop held that long is killed by compose or systemd (30 s) instead of exiting 0."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
