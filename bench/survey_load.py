"""Survey load benchmark: N members walk the whole survey at once through the buttons.

The real `python -m consultbot run` process and a small baseline bot (`baseline_bot.py`: plain
aiogram-dialog, the same questions and screens, state in memory) take the same load, one
after the other, against the Bot API emulator on 127.0.0.1.

    .venv/bin/python bench/survey_load.py                    # 200 members, SQLite
    .venv/bin/python bench/survey_load.py --sweep            # 10, 50 and 200 members
    .venv/bin/python bench/survey_load.py --sweep --storage both   # SQLite, then PostgreSQL + Redis
    .venv/bin/python bench/survey_load.py --sweep --storage both --repeat 3   # medians of 3
    .venv/bin/python bench/survey_load.py --members 50 --storage postgres

Each member sends /start, opens the survey, answers every question (the first option; on a
multi-choice screen one tap on it, then ▶️), submits, and stops at the thanks screen. A tap's
latency runs from the callback query being queued to the bot's first change of that chat.
Members choose their next button by the screen's shape (no text matching; on the commune
screen, asked once, they type a postal code), so the driver stays cheap; its own CPU share is
printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


from playground import BotAPIEmulator, SimUser, TranscriptEntry  # noqa: E402
from tests.support import (  # noqa: E402
    REDIS_URL,
    default_document,
    postgres_database,
    survey_now,
    with_dates,
    write_document,
)

TOKEN = "123456789:AAE2e-bench-token-xxxxxxxxxxxxxxxxxxxx"
LANGUAGES = ("fr", "nl", "en")
TAP_TIMEOUT = 60.0


class SignallingEmulator(BotAPIEmulator):
    """The emulator, waking a member's coroutine when the bot changes that member's chat."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changed: dict[int, asyncio.Event] = {}

    def _touch(self, chat: Any, entry: TranscriptEntry) -> None:
        super()._touch(chat, entry)
        if entry.direction == "bot":
            event = self.changed.get(chat.id)
            if event is not None:
                event.set()


@dataclass
class Walk:
    latencies: list[float] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)  # the button of each latency
    taps: int = 0
    done: bool = False
    unanswered: int = 0
    error: str = ""


def _screen(user: SimUser) -> TranscriptEntry | None:
    """The member's dialog message: the newest bot message with buttons."""
    for entry in reversed(user.transcript()):
        if entry.direction == "bot" and not entry.deleted and entry.buttons:
            return entry
    return None


# The commune screen (asked once, before the first question): the walker types this code.
POSTAL_CODE = "5000"


def _asks_commune(entry: TranscriptEntry) -> bool:
    """The commune prompt: "rather not say" (🤐) and no list of matches yet (no 🔎)."""
    flat = [b for row in entry.buttons for b in row]
    return any(b.startswith("🤐") for b in flat) and not any(b.startswith("🔎") for b in flat)


def _choose(entry: TranscriptEntry) -> str | None:
    """The button to press next on this screen, or None when the walk is over."""
    rows = entry.buttons
    flat = [b for row in rows for b in row]
    if entry.text.startswith("🙏") or "🙏" in entry.text[:40]:
        return None
    for b in flat:
        if b.startswith("📨"):
            return b
    if flat and flat[0].startswith("📝"):
        return flat[0]
    options = [b for row in rows[:-1] for b in row]
    if not options:
        return None
    if options[0].startswith(("⚪", "🔘")):
        return options[0]
    if any(b.startswith("✅") for b in options):
        return rows[-1][-1]  # ▶️
    return options[0]


async def _changed_since(emu: SignallingEmulator, user: SimUser, seq: int, timeout: float) -> bool:
    event = emu.changed[user.id]
    deadline = time.perf_counter() + timeout
    while True:
        touched = emu._chats[user.id].touched
        if (
            touched
            and touched[-1][0] > seq
            and any(s > seq and e.direction == "bot" for s, e in reversed(touched[-4:]))
        ):
            return True
        left = deadline - time.perf_counter()
        if left <= 0:
            return False
        event.clear()
        try:
            await asyncio.wait_for(event.wait(), left)
        except TimeoutError:
            return False


async def walk(emu: SignallingEmulator, user: SimUser, go: asyncio.Event) -> Walk:
    result = Walk()
    emu.changed[user.id] = asyncio.Event()
    await go.wait()
    seq = emu.seq
    await user.send("/start")
    if not await _changed_since(emu, user, seq, TAP_TIMEOUT):
        result.error = "no answer to /start"
        return result
    # The welcome comes before the menu: wait for a screen with buttons.
    deadline = time.perf_counter() + TAP_TIMEOUT
    while _screen(user) is None and time.perf_counter() < deadline:
        await _changed_since(emu, user, emu.seq, 1.0)
    for _step in range(40):
        entry = _screen(user)
        deadline = time.perf_counter() + TAP_TIMEOUT
        while entry is None and time.perf_counter() < deadline:
            # A typed answer: the old screen loses its keyboard before the new one comes.
            await _changed_since(emu, user, emu.seq, 1.0)
            entry = _screen(user)
        typed = entry is not None and _asks_commune(entry)
        choice = POSTAL_CODE if typed else _choose(entry) if entry is not None else None
        if choice is None:
            result.done = entry is not None
            if not result.done:
                result.error = "no screen"
            return result
        seq = emu.seq
        started = time.perf_counter()
        click = asyncio.ensure_future(
            user.send(choice) if typed else emu._click(user, choice, entry, None, TAP_TIMEOUT)
        )
        changed = await _changed_since(emu, user, seq, TAP_TIMEOUT)
        if not changed:
            result.error = f"no new screen after [{choice}]"
            click.cancel()
            return result
        result.latencies.append(time.perf_counter() - started)
        result.buttons.append(choice)
        result.taps += 1
        try:
            await asyncio.wait_for(click, 5.0)
        except (AssertionError, TimeoutError):
            result.unanswered += 1
    result.error = "too many steps"
    return result


@dataclass
class Run:
    bot: str
    storage: str
    members: int
    taps: int
    seconds: float
    latencies: list[float]
    completed: int
    unanswered: int
    errors: list[str]
    bot_cpu: float
    driver_cpu: float
    peak_rss_mb: float
    violations: int
    thread_cpu: tuple[float, float] = (0.0, 0.0)
    steps: list[tuple[str, list[float]]] = field(default_factory=list)  # per step of a walk
    calls: int = 0  # Bot API calls during the load, getUpdates aside

    def slowest_step(self) -> tuple[int, str, float]:
        """(step number, its button, median latency) of the step that is slowest."""
        medians = [
            (sorted(lat)[len(lat) // 2], i, label)
            for i, (label, lat) in enumerate(self.steps)
            if lat
        ]
        if not medians:
            return 0, "", float("nan")
        median, i, label = max(medians)
        return i + 1, label, median

    @property
    def rate(self) -> float:
        return self.taps / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def cpu_per_tap_ms(self) -> float:
        return 1000 * self.bot_cpu / max(1, self.taps + self.members)


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _thread_cpu(pid: int) -> tuple[float, float]:
    """(main thread, other threads) CPU seconds of a process."""
    ticks = os.sysconf("SC_CLK_TCK")
    main = other = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        if int(task.name) == pid:
            main += cpu
        else:
            other += cpu
    return main, other


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _database(storage: str, tmp: Path) -> tuple[str, str | None, str | None]:
    """(DATABASE_URL, REDIS_URL, PostgreSQL database to drop)."""
    if storage == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / f'load-{secrets.token_hex(3)}.db'}", None, None
    name = f"bench_{secrets.token_hex(4)}"
    return await postgres_database(name, create=True), REDIS_URL, name


async def one_run(
    kind: str, storage: str, members: int, tmp: Path, log: Path, profile: Path | None = None
) -> Run:
    emu = SignallingEmulator()
    await emu.start()
    document = with_dates(default_document(), survey_now(datetime.now(UTC)))
    consultation = write_document(tmp / "consultation.yaml", document)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        PYTHONPATH=str(REPO),
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=emu.base_url,
        CONSULTATION_FILE=str(consultation),
        THROTTLE_BURST="1000",
    )
    drop: str | None = None
    if kind == "consultbot":
        url, redis, drop = await _database(storage, tmp)
        env["DATABASE_URL"] = url
        if redis:
            env["REDIS_URL"] = redis
        command = [sys.executable, "-m", "consultbot", "run"]
    else:
        command = [sys.executable, str(REPO / "bench" / "baseline_bot.py"), str(consultation)]
    # Ids differ at every run so Redis keys of earlier runs never meet this one's members.
    base = 10_000_000 + secrets.randbelow(10**6) * 1000
    users = [
        emu.add_user(base + i, f"m{i}", language_code=LANGUAGES[i % 3]) for i in range(members)
    ]
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=REPO, env=env, stdout=out, stderr=out
        )
    try:
        await emu.wait_for(
            lambda: emu.calls_to("deleteWebhook") or process.returncode is not None,
            timeout=90,
            what="the bot to start polling",
        )
        if process.returncode is not None:
            raise SystemExit(f"{kind} exited at start; see {log}")
        spy = None
        if profile is not None:
            # py-spy (pip install py-spy) samples the bot during the load only.
            out = profile / f"profile-{kind}-{storage}-{members}.txt"
            spy = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "py-spy"),
                *("record", "--gil", "--format", "raw", "-r", "100", "-o", str(out)),
                *("--pid", str(process.pid)),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        go = asyncio.Event()
        calls0 = len(emu.calls)
        tasks = [asyncio.create_task(walk(emu, u, go)) for u in users]
        cpu0, driver0, t0 = _proc_cpu(process.pid), time.process_time(), time.perf_counter()
        go.set()
        walks = await asyncio.gather(*tasks)
        seconds = time.perf_counter() - t0
        cpu1, driver1 = _proc_cpu(process.pid), time.process_time()
        rss = _peak_rss_mb(process.pid)
        calls = sum(c.method != "getUpdates" for c in emu.calls[calls0:])
        threads = _thread_cpu(process.pid)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
        violations = len(emu.violations)
        await emu.stop()
        if drop:
            await postgres_database(drop, create=False)
    return Run(
        bot=kind,
        storage=storage,
        members=members,
        taps=sum(w.taps for w in walks),
        seconds=seconds,
        latencies=[x for w in walks for x in w.latencies],
        completed=sum(w.done for w in walks),
        unanswered=sum(w.unanswered for w in walks),
        errors=[w.error for w in walks if w.error],
        bot_cpu=cpu1 - cpu0,
        driver_cpu=(driver1 - driver0) / seconds if seconds else 0.0,
        peak_rss_mb=rss,
        violations=violations,
        thread_cpu=threads,
        steps=_steps(walks),
        calls=calls,
    )


def _steps(walks: Sequence[Walk]) -> list[tuple[str, list[float]]]:
    """Latencies grouped by step (the n-th tap of every walk), named by the first's button."""
    most = max((len(w.latencies) for w in walks), default=0)
    return [
        (
            next(w.buttons[i] for w in walks if len(w.buttons) > i),
            [w.latencies[i] for w in walks if len(w.latencies) > i],
        )
        for i in range(most)
    ]


def _ms(x: float) -> str:
    return f"{1000 * x:7.0f}"


def _share(cpu: tuple[float, float]) -> str:
    total = cpu[0] + cpu[1]
    return f"{cpu[1] / total:.0%}" if total else "n/a"


def report(ours: Run, base: Run) -> str:
    def ratio(a: float, b: float) -> str:
        return f"{a / b:5.2f}x" if b else "  n/a"

    lines = [
        f"--- {ours.members} members, {ours.storage}"
        + (" + Redis" if ours.storage == "postgres" else ""),
        f"{'':22}{'ConsultBot':>12}{'baseline':>12}{'ratio':>9}",
        f"{'taps/s':22}{ours.rate:12.1f}{base.rate:12.1f}{ratio(ours.rate, base.rate):>9}",
    ]
    for name, q in (("p50 ms", 0.5), ("p95 ms", 0.95), ("p99 ms", 0.99)):
        a, b = ours.pct(q), base.pct(q)
        lines.append(f"{name:22}{_ms(a):>12}{_ms(b):>12}{ratio(a, b):>9}")
    lines += [
        f"{'CPU per tap ms':22}{ours.cpu_per_tap_ms:12.1f}{base.cpu_per_tap_ms:12.1f}"
        f"{ratio(ours.cpu_per_tap_ms, base.cpu_per_tap_ms):>9}",
        f"{'walks submitted':22}{ours.completed:>8}/{ours.members:<3}{base.completed:>8}/{base.members:<3}",
        f"{'taps':22}{ours.taps:12}{base.taps:12}",
        f"{'API calls per tap':22}{ours.calls / max(ours.taps, 1):12.2f}"
        f"{base.calls / max(base.taps, 1):12.2f}",
        f"{'callbacks unanswered':22}{ours.unanswered:12}{base.unanswered:12}",
        f"{'peak RSS MB':22}{ours.peak_rss_mb:12.0f}{base.peak_rss_mb:12.0f}"
        f"{ratio(ours.peak_rss_mb, base.peak_rss_mb):>9}",
        f"{'CPU in other threads':22}{_share(ours.thread_cpu):>12}{_share(base.thread_cpu):>12}"
        "   (since start)",
        f"{'spec violations':22}{ours.violations:12}{base.violations:12}",
        f"{'driver CPU share':22}{ours.driver_cpu:12.2f}{base.driver_cpu:12.2f}   (of one core)",
    ]
    step, label, median = ours.slowest_step()
    lines.append(
        f"{'slowest step (p50)':22}{_ms(median):>12}   tap {step} of a walk, [{label[:30]}]"
    )
    for name, run in (("ConsultBot", ours), ("baseline", base)):
        medians = [_ms(sorted(lat)[len(lat) // 2]) if lat else "-" for _, lat in run.steps]
        lines.append(f"{'p50 per step ' + name:22}   {' '.join(medians)}")
    errors = sorted(set(ours.errors + base.errors))
    if errors:
        lines.append("errors: " + "; ".join(errors[:5]))
    return "\n".join(lines)


def medians(pairs: Sequence[tuple[Run, Run]]) -> str:
    """The median over the runs of each ratio, every run's ratio taken to the baseline run
    just before it: this machine's speed drifts between runs more than the bots differ."""

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    ratios = {
        "taps/s": [o.rate / b.rate for o, b in pairs],
        "p99": [o.pct(0.99) / b.pct(0.99) for o, b in pairs],
        "CPU per tap": [o.cpu_per_tap_ms / b.cpu_per_tap_ms for o, b in pairs],
    }
    ours = pairs[0][0]
    head = f"=== {ours.members} members, {ours.storage}: median of {len(pairs)} paired ratios"
    body = [
        f"{name:22}{median(values):9.2f}x   (runs: {', '.join(f'{v:.2f}' for v in values)})"
        for name, values in ratios.items()
    ]
    p99 = median([o.pct(0.99) for o, _ in pairs])
    body.append(f"{'p99 ms (ConsultBot)':22}{_ms(p99):>9}")
    return "\n".join([head, *body])


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--members", type=int, default=200)
    p.add_argument("--sweep", action="store_true", help="10, 50 and 200 members")
    p.add_argument("--storage", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each size this many times (baseline, then ConsultBot) and print the median"
        " of the paired ratios",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy both bots; collapsed stacks to this folder",
    )
    return p.parse_args(argv)


async def main(args: argparse.Namespace) -> int:
    sizes = [10, 50, 200] if args.sweep else [args.members]
    storages = ["sqlite", "postgres"] if args.storage == "both" else [args.storage]
    tmp = Path(tempfile.mkdtemp(prefix="survey-load-"))
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    ok = True
    for storage in storages:
        for n in sizes:
            pairs = []
            for _ in range(args.repeat):
                base = await one_run(
                    "baseline", storage, n, tmp, tmp / "baseline.log", args.profile
                )
                log = tmp / f"bot-{storage}-{n}.log"
                ours = await one_run("consultbot", storage, n, tmp, log, args.profile)
                print(report(ours, base), flush=True)
                ok &= ours.completed == n and ours.violations == 0
                pairs.append((ours, base))
            if len(pairs) > 1:
                print(medians(pairs), flush=True)
    if args.keep:
        print(f"logs in {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(arguments())))
