"""Survey load benchmark: N members walk the whole survey at once through the buttons.

The real `python -m consultbot run` process and a small baseline bot (`baseline_bot.py`: plain
aiogram-dialog, the same questions and screens, state in memory) take the same load, one
after the other, against the Bot API emulator on 127.0.0.1.

    .venv/bin/python bench/survey_load.py                    # 200 members, SQLite
    .venv/bin/python bench/survey_load.py --sweep            # 10, 50 and 200 members
    .venv/bin/python bench/survey_load.py --sweep --storage both   # SQLite, then PostgreSQL + Redis
    .venv/bin/python bench/survey_load.py --sweep --storage both --repeat 3   # medians of 3
    .venv/bin/python bench/survey_load.py --members 50 --storage postgres

Members walk the survey as people do (bench/survey_members.py): impatient when the spinner
stops on an unchanged screen, and a share of them tapping twice quickly. A tap's latency runs
from the member's first tap to the bot's first change of that chat.

The exit code says whether the targets of issue 20 were met, for each storage and size: taps/s
>= 1.0 x the baseline's, p99 <= 1.5 x, taps per walk <= 1.25 x, peak RSS <= 1.2 x (medians of
the paired ratios with --repeat), every walk submitted, no choice undone, ConsultBot's stored
answers equal to what the members tapped, every callback answered, no spec violation.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


from bench.survey_members import (  # noqa: E402
    Member,
    SignallingEmulator,
    Walk,
    measuring,
    stop_process,
)
from bot.consultation import Consultation, load_consultation  # noqa: E402
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
ANSWER_GRACE = 15.0  # the bot's safety net answers a query after 10 s at the latest
# Issue 20's targets: ConsultBot / baseline, medians of the paired ratios.
TARGETS = {"taps/s": (">=", 1.0), "p99": ("<=", 1.5), "taps per walk": ("<=", 1.25)}
TARGETS["peak RSS"] = ("<=", 1.2)


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
    again: int = 0  # taps repeated by impatient members
    undone: int = 0  # choices members saw undone on screen
    off_plan: int | None = None  # members whose stored answers differ from their taps
    servers_cpu: float = 0.0  # PostgreSQL's and Redis's CPU seconds during the crowd

    @property
    def servers_cpu_per_tap_ms(self) -> float:
        return 1000 * self.servers_cpu / max(1, self.taps + self.members)

    @property
    def taps_per_walk(self) -> float:
        return self.taps / max(1, self.members)

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


SERVERS = ("postgres", "redis-server")


def _servers_cpu() -> float:
    """CPU seconds of this machine's PostgreSQL and Redis processes, the backends that ended
    included (their postmaster collects them): what the database and Redis spend for a tap
    on the same cores as the bot. Everything they serve is counted: run on a quiet machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            head, _, tail = (proc / "stat").read_text().rpartition(")")
        except OSError:
            continue
        if head.partition("(")[2] in SERVERS:
            fields = tail.split()
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / ticks


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


def plan(consultation: Consultation) -> dict[str, tuple[str, ...]]:
    """What every member taps: the first option of each question shown to them."""
    chosen: dict[str, tuple[str, ...]] = {}
    for q in consultation.questions:
        if q.when is not None and not set(chosen.get(q.when.question, ())) & set(q.when.any):
            continue
        if q.options:
            chosen[q.id] = (q.options[0].id,)
    return chosen


async def off_plan(url: str, consultation: Consultation, member_ids: Sequence[int]) -> int:
    """Members whose stored, submitted answers are not exactly what they tapped."""
    from storage.db import make_engine, make_sessionmaker
    from storage.repositories.survey import SurveyRepository

    expected = plan(consultation)
    engine = make_engine(url)
    wrong = 0
    try:
        async with make_sessionmaker(engine)() as session:
            repo = SurveyRepository(session)
            for member_id in member_ids:
                response = await repo.response(consultation.id, member_id)
                if response is None or response.status != "submitted":
                    wrong += 1
                    continue
                stored = {q: a.choices for q, a in (await repo.answers(response.id)).items()}
                wrong += stored != expected
    finally:
        await engine.dispose()
    return wrong


def _doubles(members: int, share: float) -> list[bool]:
    """Which members tap twice quickly: `share` of them, spread evenly."""
    return [int((i + 1) * share) > int(i * share) for i in range(members)]


async def one_run(
    kind: str,
    storage: str,
    members: int,
    tmp: Path,
    log: Path,
    profile: Path | None = None,
    double_share: float = 0.2,
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
    base_ids = [base + i for i in range(members)]
    users = [
        emu.add_user(uid, f"m{i}", language_code=LANGUAGES[i % 3]) for i, uid in enumerate(base_ids)
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
        crowd = [
            Member(emu, u, d) for u, d in zip(users, _doubles(members, double_share), strict=True)
        ]
        tasks = [asyncio.create_task(m.run(go)) for m in crowd]
        servers0 = _servers_cpu()
        with measuring():
            cpu0, driver0 = _proc_cpu(process.pid), time.process_time()
            t0 = time.perf_counter()
            go.set()
            walks = await asyncio.gather(*tasks)
            seconds = time.perf_counter() - t0
        cpu1, driver1 = _proc_cpu(process.pid), time.process_time()
        servers = _servers_cpu() - servers0
        # Taps fired and forgotten (the second of a double tap) are answered a little later.
        clicks = [c for w in walks for c in w.clicks]
        try:
            await emu.wait_for(
                lambda: all(c.answer is not None for c in clicks),
                timeout=ANSWER_GRACE,
                what="an answer to every tap",
            )
        except AssertionError:
            pass
        unanswered = sum(c.answer is None for c in clicks)
        rss = _peak_rss_mb(process.pid)
        calls = sum(c.method != "getUpdates" for c in emu.calls[calls0:])
        threads = _thread_cpu(process.pid)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
        wrong = None
        if kind == "consultbot":
            wrong = await off_plan(env["DATABASE_URL"], load_consultation(consultation), base_ids)
    finally:
        await stop_process(process)
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
        unanswered=unanswered,
        errors=[w.error for w in walks if w.error],
        bot_cpu=cpu1 - cpu0,
        servers_cpu=servers,
        driver_cpu=(driver1 - driver0) / seconds if seconds else 0.0,
        peak_rss_mb=rss,
        violations=violations,
        thread_cpu=threads,
        steps=_steps(walks),
        calls=calls,
        again=sum(w.again for w in walks),
        undone=sum(w.undone for w in walks),
        off_plan=wrong,
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


def _or_na(value: int | None) -> str:
    return "n/a" if value is None else str(value)


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
        f"{'servers CPU per tap ms':22}{ours.servers_cpu_per_tap_ms:12.1f}"
        f"{base.servers_cpu_per_tap_ms:12.1f}   (PostgreSQL and Redis on this machine)",
        f"{'walks submitted':22}{ours.completed:>8}/{ours.members:<3}{base.completed:>8}/{base.members:<3}",
        f"{'taps':22}{ours.taps:12}{base.taps:12}",
        f"{'taps per walk':22}{ours.taps_per_walk:12.2f}{base.taps_per_walk:12.2f}"
        f"{ratio(ours.taps_per_walk, base.taps_per_walk):>9}",
        f"{'taps again (impatient)':22}{ours.again:12}{base.again:12}",
        f"{'choices undone':22}{ours.undone:12}{base.undone:12}   (seen on screen)",
        f"{'stored != taps':22}{_or_na(ours.off_plan):>12}{_or_na(base.off_plan):>12}"
        "   (members; the baseline keeps no answers)",
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


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def paired_ratios(pairs: Sequence[tuple[Run, Run]]) -> dict[str, list[float]]:
    """Each run's ratios to the baseline run just before it: this machine's speed drifts
    between runs more than the bots differ."""
    return {
        "taps/s": [o.rate / b.rate for o, b in pairs],
        "p99": [o.pct(0.99) / b.pct(0.99) for o, b in pairs],
        "taps per walk": [o.taps_per_walk / b.taps_per_walk for o, b in pairs],
        "CPU per tap": [o.cpu_per_tap_ms / b.cpu_per_tap_ms for o, b in pairs],
        "peak RSS": [o.peak_rss_mb / b.peak_rss_mb for o, b in pairs],
    }


def misses(pairs: Sequence[tuple[Run, Run]]) -> list[str]:
    """The targets this storage and size missed (empty: all met)."""
    ratios = paired_ratios(pairs)
    missed = []
    for name, (way, bound) in TARGETS.items():
        value = _median(ratios[name])
        if not (value >= bound if way == ">=" else value <= bound):
            missed.append(f"{name} {value:.2f}x (target {way} {bound}x)")
    for ours, _ in pairs:
        problems = {
            "walks not submitted": ours.members - ours.completed,
            "choices undone": ours.undone,
            "members whose stored answers differ from their taps": ours.off_plan or 0,
            "callbacks unanswered": ours.unanswered,
            "spec violations": ours.violations,
        }
        missed += [f"{name}: {n}" for name, n in problems.items() if n]
    return missed


def medians(pairs: Sequence[tuple[Run, Run]]) -> str:
    """The median over the runs of each paired ratio, and the verdict on the targets."""
    ours = pairs[0][0]
    head = f"=== {ours.members} members, {ours.storage}: median of {len(pairs)} paired ratios"
    body = [
        f"{name:22}{_median(values):9.2f}x   (runs: {', '.join(f'{v:.2f}' for v in values)})"
        for name, values in paired_ratios(pairs).items()
    ]
    p99 = _median([o.pct(0.99) for o, _ in pairs])
    body.append(f"{'p99 ms (ConsultBot)':22}{_ms(p99):>9}")
    missed = misses(pairs)
    body.append("targets: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
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
    p.add_argument(
        "--double-share",
        type=float,
        default=0.2,
        help="the share of members who tap twice quickly (default 0.2)",
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
                share = args.double_share
                base = await one_run(
                    "baseline", storage, n, tmp, tmp / "baseline.log", args.profile, share
                )
                log = tmp / f"bot-{storage}-{n}.log"
                ours = await one_run("consultbot", storage, n, tmp, log, args.profile, share)
                print(report(ours, base), flush=True)
                pairs.append((ours, base))
            print(medians(pairs), flush=True)
            ok &= not misses(pairs)
    if args.keep:
        print(f"logs in {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(arguments())))
