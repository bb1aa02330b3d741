"""A bot killed with SIGKILL takes its worker processes (charts, exports) with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PARENT = textwrap.dedent(
    """
    import os, time
    from bot.organisers.export_worker import ExportRunner
    from bot.results.render_worker import ProcessRenderer

    renderer, runner = ProcessRenderer(), ExportRunner()  # kept: their pools stay open
    charts = renderer._run(os.getpid)
    exports = runner._worker().submit(os.getpid).result()
    print(charts, exports, flush=True)
    time.sleep(120)
    """
)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has exited


def test_workers_exit_when_the_bot_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    workers: list[int] = []
    try:
        assert parent.stdout is not None
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(running(pid) for pid in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in workers if running(pid)] == []
    finally:
        parent.kill()
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_worker_starts_at_the_lower_priority() -> None:
    # Started by a job from the event loop's thread, a worker spent its start-up (~0.6 s of
    # CPU: the interpreter and the modules the spawn imports) at the bot's own priority.
    from bot.worker_pool import priority_at_start, worker_pool
    from storage.hot_path.statements import BACKGROUND_NICE

    pool = worker_pool()
    try:
        assert pool.submit(priority_at_start).result(timeout=60) == BACKGROUND_NICE
        assert os.getpriority(os.PRIO_PROCESS, 0) == 0  # the caller's own is unchanged
    finally:
        pool.shutdown()
