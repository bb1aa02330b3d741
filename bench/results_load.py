"""Results load benchmark: members' taps while organisers storm /results and export.

    .venv/bin/python bench/results_load.py                        # 100,000 responses, SQLite
    .venv/bin/python bench/results_load.py --storage postgres     # PostgreSQL + Redis
    .venv/bin/python bench/results_load.py --responses 20000 --members 50 --organisers 4
    .venv/bin/python bench/results_load.py --members-after 20      # the round in the writing
    .venv/bin/python bench/results_load.py --storage postgres --repeat 3  # the median of 3 runs

The real `python -m consultbot run` process, against the Bot API emulator on 127.0.0.1, on a
database seeded with N submitted responses (bulk SQL, not the survey dialog). In the same bot
process, two rounds of M new members walking the whole survey with a human's pauses between
taps: the first quiet, the second during a storm — organisers (ADMIN_IDS) and officials
sending /results again and again, one organiser exporting everything as xlsx, then as CSV.

Target (issue 18, item 5): the storm round's p99 tap latency at most 50 ms above the quiet
round's. The exit code is 0 when it is met and every walk was submitted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import secrets
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.survey_load import _proc_cpu, _servers_cpu  # noqa: E402
from bench.survey_members import (  # noqa: E402
    SignallingEmulator,
    _changed_since,
    _choose,
    _screen,
    measuring,
    open_chat,
    stop_process,
)
from bot.consultation import Consultation, load_consultation  # noqa: E402
from playground import SimUser  # noqa: E402
from storage.db import upgrade_async  # noqa: E402
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
TAP_TIMEOUT = 300.0
SEEDED_FIRST_ID = 50_000_000
TARGET_MS = 50.0


# ---------------------------------------------------------------- seeding


Row = tuple[Any, ...]


def seeded_rows(
    consultation: Consultation, n: int, officials: list[int]
) -> tuple[list[Row], list[Row], list[Row], list[Row], list[Row]]:
    """Members, roles, responses, answers, choices: N submitted responses, each answering
    every question it would be shown (1 to 3 options of a multi-choice one)."""
    rnd = random.Random(18)
    start = datetime.now(UTC) - timedelta(days=2)
    members: list[Row] = []
    roles: list[Row] = []
    responses: list[Row] = []
    answers: list[Row] = []
    choices: list[Row] = []
    for i in range(n):
        member, response, at = SEEDED_FIRST_ID + i, i + 1, start + timedelta(seconds=i)
        # No role: the survey's opening announcement is not for them (their chats are fake).
        members.append((member, f"s{i}", LANGUAGES[i % 3], False, at))
        responses.append((response, consultation.id, member, "submitted", at, at))
        given: dict[str, list[str]] = {}
        for q in consultation.questions:
            if q.when is not None and not set(q.when.any) & set(given.get(q.when.question, [])):
                continue
            options = [o.id for o in q.options]
            if q.kind == "multi":
                pick = rnd.sample(options, rnd.randint(1, min(3, len(options))))
            elif options:
                pick = [rnd.choice(options)]
            else:
                pick = []
            given[q.id] = pick
            answers.append((response, q.id, None))
            choices.extend((response, q.id, o) for o in pick)
    for j, official in enumerate(officials):
        members.append((official, f"o{j}", LANGUAGES[j % 3], False, start))
        roles.append((official, "official"))
    return members, roles, responses, answers, choices


TABLES = (
    ("members", ("id", "first_name", "language", "blocked", "created_at")),
    ("member_roles", ("member_id", "role")),
    ("responses", ("id", "consultation_id", "member_id", "status", "submitted_at", "updated_at")),
    ("question_answers", ("response_id", "question_id", "text")),
    ("answer_choices", ("response_id", "question_id", "option_id")),
)


def _counts_rebuilt() -> str:
    """The statement that builds tally_counts from the submitted responses (migration 0015)."""
    path = REPO / "storage" / "migrations" / "versions" / "0015_tally_counts.py"
    spec = importlib.util.spec_from_file_location("tally_counts_migration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.rebuild()


async def seed(url: str, consultation: Consultation, n: int, officials: list[int]) -> None:
    await upgrade_async(url)
    data = seeded_rows(consultation, n, officials)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]

        def plain(row: Row) -> Row:  # the app stores naive UTC on SQLite
            return tuple(
                v.replace(tzinfo=None).isoformat(sep=" ") if isinstance(v, datetime) else v
                for v in row
            )

        conn = sqlite3.connect(path)
        try:
            # The counts' triggers set aside while seeding, the counts built at the end as
            # their migration builds them (a million upserts: 40 s, against 12 s in all).
            triggers = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
            ).fetchall()
            for name, _sql in triggers:
                conn.execute(f"DROP TRIGGER {name}")
            for (table, columns), rows in zip(TABLES, data, strict=True):
                marks = ", ".join("?" for _ in columns)
                conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    (plain(r) for r in rows),
                )
            conn.execute(_counts_rebuilt())
            for _name, sql in triggers:
                conn.execute(sql)
            conn.commit()
        finally:
            conn.close()
        return
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, database=parsed.database
    )
    try:
        # The counts' triggers off while seeding (a plan cached on empty tables made them
        # scan the responses per row: COPY ran for more than 12 minutes), built at the end.
        await conn.execute("SET session_replication_role = replica")
        for (table, columns), rows in zip(TABLES, data, strict=True):
            await conn.copy_records_to_table(table, records=rows, columns=columns)
        await conn.execute("RESET session_replication_role")
        await conn.execute(_counts_rebuilt())
        # COPY with explicit ids leaves the sequence behind: the bot's next response needs one.
        await conn.execute("SELECT setval('responses_id_seq', (SELECT max(id) FROM responses))")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


# ---------------------------------------------------------------- members and the storm


@dataclass
class Walk:
    latencies: list[float] = field(default_factory=list)
    tapped_at: list[float] = field(default_factory=list)  # perf_counter() of each tap
    done: bool = False
    error: str = ""


async def walk(emu: SignallingEmulator, user: SimUser, pause: tuple[float, float]) -> Walk:
    """/start, then the survey to its end, a human's pause before each tap."""
    result = Walk()
    emu.changed[user.id] = asyncio.Event()
    rnd = random.Random(user.id)
    await asyncio.sleep(rnd.uniform(*pause))
    if not await open_chat(emu, user, TAP_TIMEOUT):
        result.error = "no answer to /start"
        return result
    for _step in range(40):
        entry = _screen(user)
        choice = _choose(entry) if entry is not None else None
        if choice is None:
            result.done = entry is not None
            result.error = "" if result.done else "no screen"
            return result
        await asyncio.sleep(rnd.uniform(*pause))
        seq = emu.seq
        started = time.perf_counter()
        click = asyncio.ensure_future(emu._click(user, choice, entry, None, TAP_TIMEOUT))
        if not await _changed_since(emu, user, seq, TAP_TIMEOUT):
            result.error = f"no new screen after [{choice}]"
            click.cancel()
            return result
        result.latencies.append(time.perf_counter() - started)
        result.tapped_at.append(started)
        try:
            await asyncio.wait_for(click, 10.0)
        except (AssertionError, TimeoutError):
            pass
    result.error = "too many steps"
    return result


@dataclass
class Storm:
    results: list[float] = field(default_factory=list)  # seconds from /results to its end
    exports: list[tuple[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    round_at: tuple[float, float] = (0.0, 0.0)  # the members' round, s after the storm began


# What the last message of a /results holds: the summary's shares (organisers, and everyone
# in the results phase) or the date the results come out (others, before it).
RESULTS_END = ("%", "publiés", "gepubliceerd", "published")


async def results_storm(
    emu: SignallingEmulator, user: SimUser, stop: asyncio.Event, pause: float, storm: Storm
) -> None:
    while not stop.is_set():
        seq = emu.seq
        started = time.perf_counter()
        await user.send("/results")
        try:
            await emu.wait_for(
                lambda s=seq: any(  # type: ignore[misc]
                    n > s
                    and e.direction == "bot"
                    and e.kind == "text"
                    and any(m in e.text for m in RESULTS_END)
                    for n, e in emu._chats[user.id].touched[-12:]
                ),
                timeout=TAP_TIMEOUT,
                what="/results",
            )
        except AssertionError as exc:
            last = [(e.direction, e.kind, e.text[:40]) for e in user.transcript()[-6:]]
            storm.errors.append(f"/results unanswered ({user.id}): {str(exc)[:40]} {last}")
            return
        storm.results.append(time.perf_counter() - started)
        await asyncio.sleep(pause)


async def export_storm(
    emu: SignallingEmulator, user: SimUser, formats: list[str], storm: Storm
) -> None:
    for fmt in formats:
        seq = emu.seq
        started = time.perf_counter()
        await user.send(f"/export {fmt}")
        try:
            # Its last message (the organiser speaks French): /export is acknowledged at once
            # and its files follow from a task of their own.
            await emu.wait_for_bot_message(user, "Export terminé", since=seq, timeout=1800)
        except AssertionError:
            storm.errors.append(f"/export {fmt} unanswered")
            return
        storm.exports.append((fmt, time.perf_counter() - started))


# ---------------------------------------------------------------- a run


@dataclass
class Round:
    name: str
    walks: list[Walk]
    seconds: float
    started: float  # perf_counter() when the round began
    bot_cpu: float
    # The round's CPU seconds of the rest of the machine: the bot's workers (charts, exports),
    # PostgreSQL and Redis, and this benchmark (the emulator and the members), which all
    # share the cores with the bot.
    workers_cpu: float
    servers_cpu: float
    bench_cpu: float

    @property
    def latencies(self) -> list[float]:
        return sorted(x for w in self.walks for x in w.latencies)

    def pct(self, q: float) -> float:
        lat = self.latencies
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    def slowest(self, n: int = 10) -> list[tuple[float, float]]:
        """The `n` slowest taps: (seconds into the round, latency in seconds)."""
        taps = [
            (at, lat) for w in self.walks for at, lat in zip(w.tapped_at, w.latencies, strict=True)
        ]
        start = self.started
        return [(at - start, lat) for at, lat in sorted(taps, key=lambda t: -t[1])[:n]]


def _ids(base: int, n: int) -> Iterator[int]:
    return iter(range(base, base + n))


async def one_run(args: argparse.Namespace, tmp: Path) -> tuple[Round, Round, Storm, int]:
    emu = SignallingEmulator()
    await emu.start()
    document = with_dates(default_document(), survey_now(datetime.now(UTC)))
    path = write_document(tmp / "consultation.yaml", document)
    consultation = load_consultation(path)
    base = 10_000_000 + secrets.randbelow(10**6) * 1000
    organisers = list(_ids(base, args.organisers))
    officials = list(_ids(base + 100, args.officials))
    quiet_ids = list(_ids(base + 200, args.members))
    storm_ids = list(_ids(base + 500, args.members))
    drop = None
    if args.storage == "sqlite":
        url, redis = f"sqlite+aiosqlite:///{tmp / f'results-{secrets.token_hex(3)}.db'}", None
    else:
        drop = f"bench_{secrets.token_hex(4)}"
        url, redis = await postgres_database(drop, create=True), REDIS_URL
    t0 = time.perf_counter()
    await seed(url, consultation, args.responses, officials)
    print(f"seeded {args.responses} responses in {time.perf_counter() - t0:.1f} s", flush=True)

    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        PYTHONPATH=str(REPO),
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=emu.base_url,
        CONSULTATION_FILE=str(path),
        DATABASE_URL=url,
        ADMIN_IDS=",".join(map(str, organisers)),
        THROTTLE_BURST="1000",
    )
    if redis:
        env["REDIS_URL"] = redis
    for i, uid in enumerate([*organisers, *officials, *quiet_ids, *storm_ids]):
        emu.add_user(uid, f"u{i}", language_code=LANGUAGES[i % 3])
    log = tmp / "bot.log"
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "consultbot", "run", cwd=REPO, env=env, stdout=out, stderr=out
        )
    spy = None
    try:
        await emu.wait_for(
            lambda: emu.calls_to("deleteWebhook") or process.returncode is not None,
            timeout=120,
            what="the bot to start polling",
        )
        if process.returncode is not None:
            raise SystemExit(f"the bot exited at start; see {log}")
        if args.profile is not None:
            spy = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "py-spy"),
                *("record", "--gil", "--subprocesses", "--format", "raw", "-r", "100"),
                *("-o", str(args.profile), "--pid", str(process.pid)),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        idle = await settled(process.pid)
        print(f"the bot and its workers idle {idle:.1f} s after polling began", flush=True)
        pause = (args.pause * 0.5, args.pause * 1.5)

        async def members_round(name: str, ids: list[int]) -> Round:
            pid = process.pid
            cpu0 = (_proc_cpu(pid), _children_cpu(pid), _servers_cpu(), time.process_time())
            with measuring():
                started = time.perf_counter()
                walks = await asyncio.gather(*(walk(emu, emu.user(i), pause) for i in ids))
                seconds = time.perf_counter() - started
            cpu1 = (_proc_cpu(pid), _children_cpu(pid), _servers_cpu(), time.process_time())
            return Round(
                name, walks, seconds, started, *(b - a for a, b in zip(cpu0, cpu1, strict=True))
            )

        quiet = await members_round("quiet", quiet_ids)
        storm, stop = Storm(), asyncio.Event()
        senders = [
            asyncio.create_task(results_storm(emu, emu.user(u), stop, args.storm_pause, storm))
            for u in [*organisers, *officials]
        ]
        exporter = asyncio.create_task(
            export_storm(emu, emu.user(organisers[0]), args.export, storm)
        )
        began = time.perf_counter()
        await asyncio.sleep(args.members_after)
        stormy = await members_round("storm", storm_ids)
        storm.round_at = (time.perf_counter() - stormy.seconds - began, time.perf_counter() - began)
        stop.set()
        await asyncio.gather(*senders)
        await exporter
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
        await stop_process(process, 30)
        violations = len(emu.violations)
        await emu.stop()
        if drop:
            await postgres_database(drop, create=False)
    return quiet, stormy, storm, violations


async def settled(pid: int, window: float = 0.5, quiet: int = 3, timeout: float = 120.0) -> float:
    """Wait until the bot, its workers and the database servers have been idle (under a tenth
    of a core) for `quiet` windows in a row: a starting bot computes a large consultation's
    results and charts ahead (ResultsCache.warm), which the quiet round would otherwise
    measure. The seconds it took."""

    def used() -> float:
        return _proc_cpu(pid) + _children_cpu(pid) + _servers_cpu()

    began = time.perf_counter()
    last, idle = used(), 0
    while idle < quiet and time.perf_counter() - began < timeout:
        await asyncio.sleep(window)
        now = used()
        idle = idle + 1 if now - last < 0.1 * window else 0
        last = now
    return time.perf_counter() - began


def _children_cpu(pid: int) -> float:
    """CPU seconds of the processes `pid` started (the chart and export workers)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            tail = (proc / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(tail[1]) == pid:
            total += _proc_cpu(int(proc.name))
    return total


def _ms(x: float) -> str:
    return f"{1000 * x:8.0f}"


def report(quiet: Round, stormy: Round, storm: Storm, violations: int, members: int) -> str:
    lines = [f"{'':24}{'quiet':>10}{'storm':>10}{'diff':>10}"]
    for name, q in (("p50 ms", 0.5), ("p95 ms", 0.95), ("p99 ms", 0.99), ("max ms", 1.0)):
        a, b = quiet.pct(q), stormy.pct(q)
        lines.append(f"{name:24}{_ms(a):>10}{_ms(b):>10}{_ms(b - a):>10}")
    for name, value in (
        ("taps", lambda r: f"{len(r.latencies):10}"),
        ("walks submitted", lambda r: f"{sum(w.done for w in r.walks):>6}/{members:<3}"),
        ("round s", lambda r: f"{r.seconds:10.1f}"),
        ("bot CPU s", lambda r: f"{r.bot_cpu:10.1f}"),
        ("bot's workers CPU s", lambda r: f"{r.workers_cpu:10.1f}"),
        ("PostgreSQL+Redis CPU s", lambda r: f"{r.servers_cpu:10.1f}"),
        ("benchmark CPU s", lambda r: f"{r.bench_cpu:10.1f}"),
    ):
        lines.append(f"{name:24}{value(quiet)}{value(stormy)}")
    served = sorted(storm.results)
    if served:
        lines.append(
            f"/results served {len(served)}: p50 {_ms(served[len(served) // 2]).strip()} ms,"
            f" max {_ms(served[-1]).strip()} ms"
        )
    for fmt, seconds in storm.exports:
        lines.append(f"/export {fmt}: {seconds:.1f} s")
    for r in (quiet, stormy):
        taps = ", ".join(f"{lat * 1000:.0f} ms at {at:.1f} s" for at, lat in r.slowest(8))
        lines.append(f"slowest taps, {r.name}: {taps}")
    a, b = storm.round_at
    lines.append(f"members' storm round: {a:.1f}-{b:.1f} s after the storm and export began")
    errors = sorted({w.error for w in quiet.walks + stormy.walks if w.error} | set(storm.errors))
    if errors:
        lines.append("errors: " + "; ".join(errors[:5]))
    lines.append(f"spec violations {violations}")
    return "\n".join(lines)


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--responses", type=int, default=100_000, help="submitted responses seeded")
    p.add_argument("--members", type=int, default=50, help="members walking the survey")
    p.add_argument("--storage", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--organisers", type=int, default=4, help="ADMIN_IDS storming /results")
    p.add_argument("--officials", type=int, default=20, help="officials storming /results")
    p.add_argument("--pause", type=float, default=0.5, help="a member's mean pause, s")
    p.add_argument("--storm-pause", type=float, default=0.5, help="between two /results, s")
    p.add_argument("--export", nargs="*", default=["xlsx", "csv"], help="exports, in turn")
    p.add_argument(
        "--members-after",
        type=float,
        default=0.0,
        help="the storm round's members start this long after the storm and the first export"
        " (by default at once: the round then sees the export's first seconds, its tallies)",
    )
    p.add_argument("--profile", type=Path, default=None, help="py-spy the bot to this file")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (log)")
    p.add_argument("--repeat", type=int, default=1, help="runs; the target on their median")
    return p.parse_args()


async def main(args: argparse.Namespace) -> int:
    """One run, or `--repeat` runs one after the other: the target is judged on the median of
    their p99 differences (one run of this machine swings by more than the target)."""
    extras: list[float] = []
    clean = True
    for i in range(args.repeat):
        tmp = Path(tempfile.mkdtemp(prefix="results-load-"))
        quiet, stormy, storm, violations = await one_run(args, tmp)
        run = f", run {i + 1} of {args.repeat}" if args.repeat > 1 else ""
        print(f"--- {args.responses} responses, {args.members} members, {args.storage}{run}")
        print(report(quiet, stormy, storm, violations, args.members), flush=True)
        extras.append(1000 * (stormy.pct(0.99) - quiet.pct(0.99)))
        clean = clean and (
            all(w.done for w in quiet.walks + stormy.walks) and not storm.errors and violations == 0
        )
        if args.keep:
            print(f"log in {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    extra = statistics.median(extras)
    if args.repeat > 1:
        runs = ", ".join(f"{e:+.0f}" for e in extras)
        print(f"p99 storm - quiet, median of {args.repeat}: {extra:+.0f} ms (runs: {runs})")
    met = extra <= TARGET_MS and clean
    print(
        f"target: p99 under the storm ≤ quiet + {TARGET_MS:.0f} ms: {'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(arguments())))
