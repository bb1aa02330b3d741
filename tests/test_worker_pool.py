"""A bot killed with SIGKILL takes its worker processes (charts, exports) with it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def bot_with_workers(script: str) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """A process running `script`, and the pids of its two workers (its first line)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    workers: list[int] = []
    try:
        assert parent.stdout is not None
        workers += [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2
        yield parent, workers
    finally:
        parent.kill()
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_workers_exit_when_the_bot_is_killed() -> None:
    with bot_with_workers(PARENT) as (parent, workers):
        assert all(running(pid) for pid in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in workers if running(pid)] == []


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


# Both pools busy with a job far longer than a stop may take, then closed as a stop does.
CLOSED_WHILE_BUSY = textwrap.dedent(
    """
    import os, time
    from bot.organisers.export_worker import ExportRunner
    from bot.results.render_worker import ProcessRenderer

    renderer, runner = ProcessRenderer(), ExportRunner()
    pids = [renderer._run(os.getpid), runner._worker().submit(os.getpid).result()]
    jobs = [renderer._executor.submit(time.sleep, 300), runner._worker().submit(time.sleep, 300)]
    time.sleep(0.5)  # both jobs under way in the workers
    print(*pids, flush=True)
    renderer.close()
    runner.close()
    """
)


def test_a_stop_does_not_wait_for_a_job_under_way() -> None:
    """A minute-long export must not hold the process past the stop (compose and systemd
    kill it after 30 s): closing the pools ends their workers, and the process leaves."""
    with bot_with_workers(CLOSED_WHILE_BUSY) as (parent, workers):
        assert parent.wait(timeout=60) == 0  # the jobs had 300 s to go
        assert [pid for pid in workers if running(pid)] == []
