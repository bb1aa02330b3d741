"""Two `consultbot run` processes in webhook mode on PostgreSQL and Redis, behind a load
balancer (the emulator delivers updates to each in turn): 50 members answer the survey, the
results phase opens, one instance is killed (SIGKILL) in the middle of the broadcast. Each
transition happens once; each member gets the results once (only what was in flight at the
kill may arrive twice); the overall rate is shared (the emulator enforces Telegram's limits)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.consultation import load_consultation
from bot.i18n import Translator, typeset
from bot.results.tally import results_intro
from playground import SimUser
from storage.db import make_engine, make_sessionmaker
from storage.models import Delivery, Instance, PhaseTransition
from tests.e2e.conftest import E2E, BotProcess, open_survey, wait_button
from tests.e2e.test_survey_e2e import fresh_redis
from tests.e2e.test_webhook_e2e import free_port
from tests.support import REDIS_URL, default_document, with_dates, write_document

TR = Translator()
MEMBERS = 50
LANGUAGES = ("fr", "nl", "en")
LIMIT = 20  # messages per second that the emulator allows, as Telegram about 30
RATE = 18  # BROADCAST_RATE: for both instances together (each alone would send that much)
PARTS = ("intro", "chart", "summary")
KIND = {"intro": "intro", "chart": "chart", "0": "summary"}  # by the end of the dedupe key


def t(msgid: str, lang: str) -> str:
    return TR.gettext(msgid, locale=lang)


def plain(html: str) -> str:
    return re.sub(r"</?[a-z]+>", "", html)


async def answer_survey(user: SimUser, lang: str, option_label: str) -> None:
    await user.send("/start")
    await open_survey(user, lang)
    await wait_button(user, option_label, timeout=20)
    await user.click(option_label, timeout=20)
    await user.click(t("Suivant ▶️", lang), timeout=20)
    await wait_button(user, t("📨 Envoyer mes réponses", lang), timeout=20)
    await user.click(t("📨 Envoyer mes réponses", lang), timeout=20)
    await user.wait_for_message(t("🙏 Merci ! Vos réponses sont enregistrées.", lang), timeout=20)


async def test_two_instances_one_killed_mid_broadcast(postgres_url: str, e2e: E2E) -> None:
    # (postgres_url first: the bots stop before their database is dropped.)
    loop = asyncio.get_running_loop()
    started = loop.time()
    emu = e2e.emulator
    e2e.database_url = postgres_url
    redis_url = REDIS_URL  # this run's own database (TEST_REDIS_URL), flushed
    await fresh_redis(redis_url)
    now = datetime.now(UTC)
    # The survey closes tomorrow: the test moves both bots' clock there once all answered.
    closes = now + timedelta(days=1)
    opens = closes + timedelta(seconds=1)
    # One question keeps 50 members' answers short; the rest is the default consultation.
    document = with_dates(
        default_document(),
        {
            "survey": (now - timedelta(days=3), closes),
            "results": (opens, opens + timedelta(days=2)),
            "ideas": (opens + timedelta(days=3), opens + timedelta(days=300)),
        },
    )
    document["questions"] = document["questions"][:1]
    # The results as an album broadcast (text, charts, summary), as the kill must interrupt.
    next(p for p in document["phases"] if p["id"] == "results")["push_charts"] = ["ambassador"]
    path = write_document(e2e.tmp_path / "consultation.yaml", document)
    c = load_consultation(path)
    question = c.questions[0]

    # The load balancer's public URL (never contacted) and the two instances' ports.
    public, ports = free_port(), [free_port(), free_port()]
    common = {
        "WEBHOOK_URL": f"http://127.0.0.1:{public}",
        "WEBHOOK_SECRET": "two-instances-secret",
        "REDIS_URL": redis_url,
        "BROADCAST_RATE": str(RATE),
        "INSTANCE_TIMEOUT_SECONDS": "4",
    }
    bots: list[BotProcess] = [
        e2e.bot(path, WEBHOOK_LISTEN=f"127.0.0.1:{port}", **common) for port in ports
    ]
    emu.webhook_targets = [f"http://127.0.0.1:{port}/webhook" for port in ports]
    await asyncio.gather(*(bot.start(ready_method="setWebhook") for bot in bots))
    await emu.wait_for(
        lambda: len(emu.calls_to("setWebhook")) >= 2, timeout=30, what="both webhooks set"
    )
    boot = loop.time() - started

    # 50 members answer at once; their updates reach the two instances in turn.
    people = {6001 + i: LANGUAGES[i % 3] for i in range(MEMBERS)}
    users = {m: emu.add_user(m, f"M{m}", lang) for m, lang in people.items()}
    choice = {m: question.options[i % 3] for i, m in enumerate(people)}
    await asyncio.gather(
        *(
            answer_survey(users[m], lang, c.text(choice[m].label, lang))
            for m, lang in people.items()
        )
    )
    answered = loop.time() - started
    hook = emu.webhook
    assert hook is not None
    # An update is acknowledged once handled: the last taps' 200s follow their replies.
    await emu.wait_for(lambda: hook.delivered >= 5 * MEMBERS, what="every tap acknowledged")
    posted = hook.delivered

    # Both instances served members: the load balancer gave each half of the updates.
    def served() -> list[int]:
        return [bot.log_path.read_text().count('"POST /webhook HTTP/1.1" 200') for bot in bots]

    await emu.wait_for(lambda: min(served()) >= posted // 2 - 1, what=f"half each: {served()}")

    # From now on only the broadcast sends: Telegram's limits are enforced, for both together.
    emu.enforce_limits(global_per_second=LIMIT, per_chat_per_second=1, per_group_per_minute=20)
    engine = make_engine(postgres_url)
    sessionmaker = make_sessionmaker(engine)

    async def rows() -> list[Delivery]:
        async with sessionmaker() as session:
            result = await session.scalars(
                select(Delivery).where(Delivery.topic.startswith("results:")).order_by(Delivery.id)
            )
            return list(result.all())

    caption = {  # French: "Résultats\xa0:"
        lang: plain(typeset(t("📊 <b>Résultats : {title}</b>", lang), lang)).format(
            title=c.text(c.title, lang)
        )
        for lang in LANGUAGES
    }

    intro = {lang: plain(results_intro(c, lang)) for lang in LANGUAGES}

    def received() -> Counter[tuple[int, str]]:
        counts: Counter[tuple[int, str]] = Counter()
        for m, lang in people.items():
            for entry in emu.delivered(m):
                if entry.kind == "text" and entry.text == intro[lang]:
                    counts[(m, "intro")] += 1
                elif entry.kind == "photo" and entry.text == caption[lang]:
                    counts[(m, "chart")] += 1
                elif entry.kind == "text" and entry.text.startswith(caption[lang] + "\n"):
                    counts[(m, "summary")] += 1
        return counts

    try:
        victim = bots[1]
        async with sessionmaker() as session:
            victim_token = await session.scalar(
                select(Instance.token).where(Instance.name.endswith(f":127.0.0.1:{ports[1]}"))
            )
        assert victim_token is not None

        async def victim_is_sending() -> bool:
            delivered = sum(received().values())
            if delivered < MEMBERS // 2:
                return False
            return any(r.claimed_by == victim_token and r.status == "sending" for r in await rows())

        e2e.move_clock(opens + timedelta(seconds=0.5))  # the results phase opens on both
        await emu.wait_for(victim_is_sending, timeout=60, what="the victim sending results")
        await victim.kill()
        killed_at = loop.time()
        before = received()
        at_kill = await rows()
        expected = len(at_kill)
        kind = {r.id: KIND[r.dedupe_key.rsplit(":", 1)[1]] for r in at_kill}
        claimed = [r for r in at_kill if r.status == "sending" and r.claimed_by == victim_token]
        in_flight = {(r.chat_id, kind[r.id]) for r in claimed if before[(r.chat_id, kind[r.id])]}
        # The results phase's text, the chart and one summary each, queued once.
        assert expected == len(PARTS) * MEMBERS
        assert sum(before.values()) < expected, "killed too late: nothing left to take over"

        # The survivor takes over the dead instance's claims once its heartbeat is stale.
        await emu.wait_for(
            lambda: all(received()[(m, k)] for m in people for k in PARTS),
            timeout=30,
            what="everyone's results after the kill",
        )
        finished = loop.time()

        async def settled() -> bool:
            return all(r.status == "sent" for r in await rows())

        await emu.wait_for(settled, timeout=10, what="every results delivery recorded sent")
        after = received()
        duplicated = {key: n for key, n in after.items() if n > 1}
        async with sessionmaker() as session:
            transitions = (await session.scalars(select(PhaseTransition))).all()
        logs = [bot.log_path.read_text() for bot in bots]
        print(
            f"\ntwo instances: booted in {boot:.1f} s; {MEMBERS} members answered by "
            f"{answered:.1f} s ({posted} webhook updates); victim killed after "
            f"{sum(before.values())}/{expected} deliveries holding {len(claimed)} claims, "
            f"{len(in_flight)} in flight; everyone served {finished - killed_at:.1f} s later; "
            f"duplicates: {duplicated}; limit violations: {len(emu.limit_violations)}; "
            f"test time {loop.time() - started:.1f} s"
        )
        assert all(after[(m, k)] >= 1 for m in people for k in PARTS)
        assert set(duplicated) <= in_flight, (duplicated, in_flight)
        assert all(n == 2 for n in duplicated.values())
        assert len(await rows()) == expected
        # Each transition happened once, in one of the two instances.
        for key in ("survey:open", "survey:close", "results:open"):
            full = f"{c.id}:{key}"
            assert sum(log.count(f"transition {full}:") for log in logs) == 1, key
        outcomes = {r.key.split(":", 1)[1]: r.outcome for r in transitions}
        assert outcomes["results:open"] == f"results to {MEMBERS}"
        assert all(r.status == "done" for r in transitions)
        # Both instances sent part of the broadcast, within Telegram's limits taken together.
        owners = {r.claimed_by for r in await rows()} - {None}
        assert victim_token in owners and len(owners) == 2
        assert emu.limit_violations == []
        assert "queued again" in logs[0]
    finally:
        await engine.dispose()


PER_INSTANCE = 10  # DATABASE_MAX_CONNECTIONS of each instance
CROWD = 120  # members: enough that the crowd outlasts a CLI command's start
HEADROOM = 4  # for the CLI (a status: one connection to read the schema, one to report)


async def test_two_instances_under_a_crowd_fit_the_servers_connection_limit(e2e: E2E) -> None:
    """A role limited to 2 x DATABASE_MAX_CONNECTIONS + headroom (PostgreSQL refuses any
    connection past it): two instances serve a crowd, and `consultbot status` still gets in."""
    import os
    import sys

    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from storage.db import upgrade
    from tests.support import POSTGRES_URL, REPO, survey_now, unique_name

    emu = e2e.emulator
    role, database = unique_name("cbt_role"), unique_name("cbt")
    limit = 2 * PER_INSTANCE + HEADROOM
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT {limit}'))
        await conn.execute(text(f'CREATE DATABASE "{database}" OWNER "{role}"'))
    url = (
        make_url(POSTGRES_URL)
        .set(username=role, database=database)
        .render_as_string(hide_password=False)
    )
    bots: list[BotProcess] = []
    peak = 0
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            async with admin.connect() as conn:
                count = await conn.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE usename = :r"), {"r": role}
                )
            peak = max(peak, int(count or 0))
            await asyncio.sleep(0.05)

    sampler: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(upgrade, url)
        e2e.database_url = url
        redis_url = REDIS_URL
        await fresh_redis(redis_url)
        document = with_dates(default_document(), survey_now(datetime.now(UTC)))
        document["questions"] = document["questions"][:1]
        path = write_document(e2e.tmp_path / "consultation.yaml", document)
        c = load_consultation(path)
        question = c.questions[0]
        public, ports = free_port(), [free_port(), free_port()]
        common = {
            "WEBHOOK_URL": f"http://127.0.0.1:{public}",
            "WEBHOOK_SECRET": "connection-limit-secret",
            "REDIS_URL": redis_url,
            "DATABASE_MAX_CONNECTIONS": str(PER_INSTANCE),
        }
        bots = [e2e.bot(path, WEBHOOK_LISTEN=f"127.0.0.1:{port}", **common) for port in ports]
        emu.webhook_targets = [f"http://127.0.0.1:{port}/webhook" for port in ports]
        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(bot.start(ready_method="setWebhook") for bot in bots))

        people = {7001 + i: LANGUAGES[i % 3] for i in range(CROWD)}
        users = {m: emu.add_user(m, f"M{m}", lang) for m, lang in people.items()}
        loop = asyncio.get_running_loop()
        crowd_began = loop.time()
        walks = asyncio.gather(
            *(
                answer_survey(users[m], lang, c.text(question.options[i % 3].label, lang))
                for i, (m, lang) in enumerate(people.items())
            )
        )
        # In the middle of the crowd, an organiser's command connects too.
        await emu.wait_for(
            lambda: emu.webhook is not None and emu.webhook.delivered >= 20,
            timeout=60,
            what="the crowd under way",
        )
        # Ten members' next screens wait at "Telegram" until the command is done: the crowd is
        # still under way (their updates in flight) whatever the machine's speed.
        held = [emu.hold(method="editMessageText", chat_id=m) for m in list(people)[-10:]]
        cli_began = loop.time()
        env = dict(bots[0].env)
        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "consultbot",
            "status",
            cwd=REPO,
            env={**env, "PATH": os.environ.get("PATH", "")},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(60):
            output, _ = await cli.communicate()
        cli_ended = loop.time()
        cli_during_crowd = not walks.done()
        for gate in held:
            gate.release()
        await walks
        crowd_ended = loop.time()
        sampling = False
        await sampler
        logs = "\n".join(bot.log_path.read_text() for bot in bots)
        print(
            f"\nconnection limit {limit} (2 x {PER_INSTANCE} + {HEADROOM}): peak {peak} "
            f"connections of the role; {CROWD} members answered in "
            f"{crowd_ended - crowd_began:.1f} s; `consultbot status` from "
            f"{cli_began - crowd_began:.1f} s to {cli_ended - crowd_began:.1f} s"
        )
        assert cli.returncode == 0, output.decode()
        assert cli_during_crowd, "the crowd ended before the command: make it larger"
        assert "too many connections" not in logs + output.decode()
        assert "no free PostgreSQL connection" not in logs
        assert peak <= limit
    finally:
        sampling = False
        if sampler is not None and not sampler.done():
            sampler.cancel()
        for bot in bots:
            await bot.stop()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            await conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        await admin.dispose()
