"""Broadcast benchmark: the real bot process delivers one message to each of 10,000 members
through the outbox, against the Bot API emulator enforcing Telegram's limits (scaled).

    .venv/bin/python bench/broadcast.py                       # SQLite, 10,000 recipients, 300/s
    .venv/bin/python bench/broadcast.py --postgres            # PostgreSQL (TEST_POSTGRES_URL)
    .venv/bin/python bench/broadcast.py --results             # the results phase: one message each
    .venv/bin/python bench/broadcast.py --results --pushed    # ... its charts pushed: text, album, summary
    .venv/bin/python bench/broadcast.py --albums              # text, album of 7, text each
    .venv/bin/python bench/broadcast.py --recipients 2000 --rate 100

Everything stays on 127.0.0.1. Messages are counted as Telegram counts them (each photo of an
album). Target: the last recipient served within 1.1 x (messages / the limit) of the first
send, 0 lost, 0 duplicated, 0 limit violations, every blocked member marked blocked.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.survey_members import stop_process  # noqa: E402
from bot.consultation import Consultation, Role, load_consultation  # noqa: E402
from bot.organisers.announce import announce  # noqa: E402
from playground import BotAPIEmulator  # noqa: E402
from storage.db import make_engine, make_sessionmaker, upgrade_async  # noqa: E402
from storage.models import Delivery, Member, MemberRole  # noqa: E402
from tests.support import (  # noqa: E402
    POSTGRES_URL,
    answer_survey,
    default_document,
    postgres_database,
    seed_answers,
    unique_name,
    with_dates,
    write_document,
)

TOKEN = "123456789:AAE2e-bench-token-xxxxxxxxxxxxxxxxxxxx"
FIRST_ID = 1_000_000
LANGUAGES = ("fr", "nl", "en")
OPEN = ("pending", "sending")


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--recipients", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=300.0, help="global limit = BROADCAST_RATE")
    p.add_argument("--bot-rate", type=float, default=None, help="BROADCAST_RATE (default: --rate)")
    p.add_argument("--blocked", type=float, default=0.01, help="share who blocked the bot")
    p.add_argument("--faults", type=int, default=3, help="injected 429s (retry_after=1)")
    p.add_argument(
        "--postgres",
        nargs="?",
        const=POSTGRES_URL,
        default=None,
        help="use a new database on this PostgreSQL server (default: TEST_POSTGRES_URL)",
    )
    p.add_argument(
        "--results",
        action="store_true",
        help="broadcast the results: by default one message each (the summary, 📊 and 🌐)",
    )
    p.add_argument(
        "--pushed",
        action="store_true",
        help="with --results: the file pushes the charts to the members (push_charts): the "
        "phase's text, an album of 7 and the summary, 9 messages as Telegram counts them",
    )
    p.add_argument(
        "--albums",
        action="store_true",
        help="queue a text, an album of 7 photos and a text per member through the outbox "
        "(the results phase pushing its charts: 9 messages as Telegram counts them)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="time the outbox's steps inside the bot (printed from its log at the end)",
    )
    p.add_argument(
        "--timeline",
        action="store_true",
        help="print the messages delivered in each second (as Telegram counts them)",
    )
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return p.parse_args()


async def seed(url: str, ids: list[int], consultation: Consultation, answers: bool) -> None:
    """Members with the ambassador role (bulk: the repositories flush one member at a time)."""
    engine = make_engine(url)
    try:
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            now = datetime.now(UTC)
            for start in range(0, len(ids), 2000):
                chunk = ids[start : start + 2000]
                session.add_all(
                    Member(
                        id=i,
                        first_name=f"m{i}",
                        language=LANGUAGES[i % 3],
                        blocked=False,
                        created_at=now,
                    )
                    for i in chunk
                )
                await session.flush()
                session.add_all(MemberRole(member_id=i, role=Role.AMBASSADOR) for i in chunk)
                await session.flush()
            await session.commit()
            if answers:  # the seed's ten respondents, for a realistic summary and chart
                for member_id, plan in zip(ids, seed_answers(), strict=False):
                    await answer_survey(session, consultation, member_id, plan)
    finally:
        await engine.dispose()


async def enqueue_announcement(url: str, consultation_id: str) -> int:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            html = "📣 <b>Benchmark</b>: the consultation's results are out. Touch /results."
            return await announce(
                session, consultation_id, "amb", html, datetime.now(UTC), batch="bench"
            )
    finally:
        await engine.dispose()


async def enqueue_albums(url: str, ids: list[int]) -> int:
    """What the results phase queues when it pushes the charts, built through the outbox."""
    from storage.repositories.outbox import NewDelivery, OutboxRepository
    from tests.test_emulator import png

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            outbox = OutboxRepository(session)
            photos = [await outbox.add_media(f"chart-{i}.png", png(60 + i)) for i in range(7)]
            album = await outbox.add_album(photos)
            items = []
            for i in ids:
                items += [
                    NewDelivery(f"bench:{i}:intro", "results:bench", i, text=f"Results {i}"),
                    NewDelivery(f"bench:{i}:chart", "results:bench", i, "Charts", album),
                    NewDelivery(f"bench:{i}:0", "results:bench", i, text=f"Summary {i}"),
                ]
            for start in range(0, len(items), 3000):
                await outbox.enqueue(items[start : start + 3000], datetime.now(UTC))
            await session.commit()
            return len(items)
    finally:
        await engine.dispose()


async def outbox_counts(url: str) -> tuple[dict[str, int], list[int]]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            counts = {
                status: n
                for status, n in await session.execute(
                    select(Delivery.status, func.count()).group_by(Delivery.status)
                )
            }
            blocked = list(
                (await session.scalars(select(Member.id).where(Member.blocked.is_(True)))).all()
            )
        return counts, blocked
    finally:
        await engine.dispose()


def bot_env(emu: BotAPIEmulator, url: str, consultation: Path, rate: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        PYTHONPATH=str(REPO),
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=emu.base_url,
        DATABASE_URL=url,
        CONSULTATION_FILE=str(consultation),
        ADMIN_IDS="",
        BROADCAST_RATE=f"{rate:g}",
        LOG_LEVEL="WARNING",
    )
    return env


def paused_time(told: list[tuple[float, float]], start: float, end: float) -> float:
    """The length of the union of [t, t + retry_after] within [start, end]."""
    total, reach = 0.0, start
    for t, wait in sorted(told):
        lo, hi = max(t, reach), min(t + wait, end)
        if hi > lo:
            total += hi - lo
            reach = hi
    return total


async def run(args: argparse.Namespace, workdir: Path) -> int:
    pg_name = None
    if args.postgres:
        pg_name = unique_name("cbbench")
        url = await postgres_database(pg_name, create=True, server_url=args.postgres)
    else:
        url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    try:
        return await bench(args, workdir, url)
    finally:
        if pg_name:
            await postgres_database(pg_name, create=False, server_url=args.postgres)


async def bench(args: argparse.Namespace, workdir: Path, url: str) -> int:
    n = args.recipients
    ids = list(range(FIRST_ID, FIRST_ID + n))
    # Sends (an album is one) each recipient gets.
    per_recipient = 3 if args.albums or (args.results and args.pushed) else 1
    now = datetime.now(UTC)
    if args.results:  # the results phase is open: the catch-up at start-up broadcasts them
        dates = {
            "survey": (now - timedelta(days=10), now - timedelta(days=2)),
            "results": (now - timedelta(seconds=1), now + timedelta(days=2)),
            "ideas": (now + timedelta(days=3), now + timedelta(days=300)),
        }
    else:  # nothing happens in the timeline: the only traffic is the announcement
        dates = {
            "survey": (now + timedelta(days=1), now + timedelta(days=10)),
            "results": (now + timedelta(days=11), now + timedelta(days=12)),
            "ideas": (now + timedelta(days=13), now + timedelta(days=300)),
        }
    document = with_dates(default_document(), dates)
    for phase in document["phases"]:
        if phase["kind"] == "results" and args.pushed:
            phase["push_charts"] = ["ambassador"]
    consultation_path = write_document(workdir / "consultation.yaml", document)
    consultation = load_consultation(consultation_path)

    t0 = time.monotonic()
    await upgrade_async(url)
    await seed(url, ids, consultation, answers=args.results)
    if args.albums:
        queued = await enqueue_albums(url, ids)
        assert queued == 3 * n, queued
    elif not args.results:
        queued = await enqueue_announcement(url, consultation.id)
        assert queued == n, queued
    print(
        f"database: {make_url(url).get_backend_name()}, {n} members seeded and queued "
        f"in {time.monotonic() - t0:.1f}s"
    )

    emu = BotAPIEmulator(keep_file_bytes=False)
    await emu.start()
    try:
        for i in ids:
            emu.add_user(i, f"m{i}", LANGUAGES[i % 3])
        blocked = ids[:: max(1, round(1 / args.blocked))] if args.blocked > 0 else []
        for i in blocked:  # they blocked the bot while it was down: the updates are pending
            emu.user(i).block_bot()
        unblocked = [i for i in ids if i not in set(blocked)]
        for k in range(args.faults):  # spread over the broadcast
            target = unblocked[(k + 1) * len(unblocked) // (args.faults + 1)]
            albums = args.albums or (args.results and args.pushed)
            method = "sendMediaGroup" if albums and k % 2 else "sendMessage"
            emu.inject_fault(method, chat_id=target, code=429, retry_after=1, times=1)
        emu.enforce_limits(
            global_per_second=args.rate, per_chat_per_second=1, per_group_per_minute=20, scale=1
        )

        log_path = workdir / "bot.log"
        with log_path.open("ab") as log:
            command = [__file__, PROFILED] if args.profile else ["-m", "consultbot"]
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *command,
                "run",
                cwd=REPO,
                env=bot_env(emu, url, consultation_path, args.bot_rate or args.rate),
                stdout=log,
                stderr=log,
            )
        started = time.monotonic()
        expected = set(unblocked)
        target = len(expected) * per_recipient
        last_report = started
        try:
            while True:
                await asyncio.sleep(0.25)
                counts = emu.delivery_counts()
                done = sum(counts.get(i, 0) for i in ids)
                if process.returncode is not None:
                    print(f"the bot exited ({process.returncode}); see {log_path}")
                    return 2
                if time.monotonic() - last_report >= 5:
                    last_report = time.monotonic()
                    print(f"  {time.monotonic() - started:5.1f}s: {done}/{target} delivered")
                if done >= target:
                    statuses, _ = await outbox_counts(url)
                    if not any(statuses.get(s) for s in OPEN):
                        break
                if time.monotonic() - started > args.timeout:
                    print(f"timed out after {args.timeout:g}s")
                    break
            await asyncio.sleep(1)  # anything sent twice would show up now
        finally:
            await stop_process(process)

        statuses, blocked_in_db = await outbox_counts(url)
        # (time, messages as Telegram counts them) of each delivered send
        weighted = sorted(
            (c.time, len(c.params["media"]) if c.method == "sendMediaGroup" else 1)
            for c in emu.calls
            if c.method in SENDS and c.response.get("ok") and c.params.get("chat_id") in expected
        )
        sends = [t for t, _ in weighted]
        messages = sum(w for _, w in weighted)
        counts = emu.delivery_counts()
        lost = [i for i in expected if counts.get(i, 0) < per_recipient]
        duplicated = sum(max(0, counts.get(i, 0) - per_recipient) for i in ids)
        to_blocked = sum(counts.get(i, 0) for i in blocked)
        span = sends[-1] - sends[0] if len(sends) > 1 else 0.0
        rate = (messages - weighted[-1][1]) / span if span else 0.0
        ideal = messages / args.rate  # at the limit, not a message more
        # Each 429 asks its chat to wait retry_after seconds; the outbox stops everything
        # only when several chats are told at once (bot/delivery/ratelimit.py, flood). The
        # figure "without the retry_after waits" leaves that time out all the same, for
        # comparison with code that stopped all sending at every 429.
        told = [(f.time, f.response["parameters"]["retry_after"]) for f in emu.injected_failures]
        told += [(v.time, v.retry_after) for v in emu.limit_violations]
        paused = paused_time(told, sends[0], sends[-1]) if sends else 0.0
        active_rate = (messages - weighted[-1][1]) / (span - paused) if span > paused else 0.0
        kinds = Counter(v.kind for v in emu.limit_violations)
        refused = Counter(
            c.response.get("error_code")
            for c in emu.calls
            if c.method in SENDS and not c.response.get("ok")
        )
        uploads = [m.source for m in emu.media_sends].count("upload")
        marked = len(set(blocked_in_db) & set(blocked))
        ratio = active_rate / args.rate

        print()
        print(
            f"recipients        {n} ({len(blocked)} blocked the bot), "
            f"{per_recipient} message(s) each"
        )
        print(
            f"delivered         {messages} messages as Telegram counts them ({len(sends)} sends) "
            f"to {len(expected) - len(lost)} members"
        )
        print(
            f"last recipient    served {span:.1f}s after the first send = {span / ideal:.3f} x "
            f"(messages / limit = {ideal:.1f}s); {(span - paused) / ideal:.3f} x without the "
            f"retry_after waits"
        )
        print(
            f"achieved rate     {rate:.1f}/s over {span:.1f}s = {rate / args.rate:.3f} of the "
            f"limit ({args.rate:g}/s), first to last delivered send"
        )
        print(
            f"  without pauses  {active_rate:.1f}/s = {ratio:.3f} of the limit, leaving out "
            f"{paused:.1f}s of retry_after waits ({len(told)} x 429)"
        )
        print(f"lost              {len(lost)}")
        print(f"duplicated        {duplicated}")
        print(f"limit violations  {len(emu.limit_violations)} {dict(kinds) or ''}")
        print(f"sent to blocked   {to_blocked}")
        print(f"blocked in DB     {marked}/{len(blocked)}")
        print(
            f"refused sends     {dict(refused)} (403: blocked; 429: {args.faults} injected "
            f"+ limit violations)"
        )
        if args.results:
            print(f"chart uploads     {uploads} (then file_id)")
        print(f"outbox            {statuses}")
        print(f"wall time         {time.monotonic() - started:.1f}s from the bot's start")
        ok = (
            span <= 1.1 * ideal
            and not lost
            and duplicated == 0
            and not emu.limit_violations
            and to_blocked == 0
            and marked == len(blocked)
        )
        for v in emu.limit_violations[:10]:
            print(
                f"  violation at {v.time - sends[0]:7.3f}s: {v.kind} limit {v.limit:g}, "
                f"chat {v.chat_id}"
            )
        if duplicated:
            twice = [i for i in ids if counts.get(i, 0) > per_recipient][:5]
            print(f"duplicated chats  {twice}: see {workdir} (--keep)")
            for i in twice:
                times = [
                    f"{c.time - sends[0]:.3f}s"
                    for c in emu.calls
                    if c.params.get("chat_id") == i and c.method.startswith("send")
                ]
                print(f"  {i}: sends at {times}")
        if args.timeline and sends:
            per_second = Counter(int(t - sends[0]) for t, w in weighted for _ in range(w))
            print("messages per second after the first send:")
            for start in range(0, int(span) + 1, 10):
                row = [per_second.get(s, 0) for s in range(start, min(start + 10, int(span) + 1))]
                print(f"  {start:4d}s  " + " ".join(f"{n:4d}" for n in row))
        if args.profile:
            lines = log_path.read_text(errors="replace").splitlines()
            start = max((i for i, line in enumerate(lines) if PROFILE_HEADER in line), default=None)
            print("\n".join(lines[start:]) if start is not None else "(no profile in the log)")
        print("TARGET MET" if ok else "TARGET MISSED")
        return 0 if ok else 1
    finally:
        await emu.stop()


SENDS = ("sendMessage", "sendPhoto", "sendMediaGroup")
PROFILED = "--profiled-bot"
PROFILE_HEADER = "outbox profile"


def profiled_bot() -> int:
    """`python -m consultbot run`, with the outbox's steps timed; the totals are logged at exit."""
    import atexit
    import functools
    from collections import defaultdict

    from bot.delivery import outbox as broadcast
    from consultbot.cli import main as bot_main
    from storage.repositories import outbox

    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # n, total, max

    def timed(owner: type, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        async def wrapper(*a: object, **k: object) -> object:
            t = time.perf_counter()
            try:
                return await original(*a, **k)
            finally:
                d = time.perf_counter() - t
                entry = totals[label]
                entry[0] += 1
                entry[1] += d
                entry[2] = max(entry[2], d)

        setattr(owner, name, wrapper)

    timed(broadcast.Outbox, "_send", "send (HTTP round trip)")
    timed(broadcast.Outbox, "_flush_sent", "settle: sent (batched transaction)")
    timed(broadcast.Outbox, "_transient", "settle: retry later")
    timed(broadcast.Outbox, "_fail", "settle: failed")
    timed(broadcast.Outbox, "_settle_blocked", "settle: blocked")
    timed(broadcast.Outbox, "_deliver", "deliver (send + settle; holds a slot)")
    timed(broadcast.Outbox, "pump", "pump (claim + dispatch a batch)")
    timed(outbox.OutboxRepository, "claim_due", "claim_due query")
    timed(asyncio.Semaphore, "acquire", "wait for a free slot (Semaphore.acquire)")
    original_sleep = asyncio.sleep

    async def sleep(delay: float, *a: object, **k: object) -> object:
        if delay > 0:
            entry = totals["asyncio.sleep (rate limiter waits, idle)"]
            entry[0] += 1
            entry[1] += delay
            entry[2] = max(entry[2], delay)
        return await original_sleep(delay, *a, **k)

    broadcast.asyncio.sleep = sleep  # type: ignore[attr-defined]

    def report() -> None:
        out = [
            f"{PROFILE_HEADER} (seconds):",
            f"{'step':45} {'count':>7} {'total':>8} {'mean ms':>8} {'max ms':>8}",
        ]
        for label, (n, total, longest) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
            mean = total / n * 1000 if n else 0
            out.append(f"{label:45} {n:7d} {total:8.2f} {mean:8.2f} {longest * 1000:8.1f}")
        print("\n".join(out), file=sys.stderr, flush=True)

    atexit.register(report)
    return bot_main(sys.argv[2:])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == PROFILED:
        return profiled_bot()
    args = arguments()
    # The emulator stamps a request when it handles it: a garbage-collection pause of this
    # process (its call log grows to tens of thousands of objects) would bunch the requests
    # that queued meanwhile and count them as the bot's bursts. Telegram has no such pause.
    gc.collect()
    gc.freeze()
    gc.disable()
    if args.keep:
        workdir = Path(tempfile.mkdtemp(prefix="consultbot-bench-"))
        print(f"working directory: {workdir}")
        return asyncio.run(run(args, workdir))
    with tempfile.TemporaryDirectory(prefix="consultbot-bench-") as tmp:
        return asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
