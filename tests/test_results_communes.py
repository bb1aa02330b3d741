"""Results per commune beside the network's: three communes of 12, 7 and 2 respondents.

The officials of the first two get their commune's counts and the network's, both exact; the
third's get the network's and the sentence saying why, never the two answers. Organisers get
the communes × answers table (small communes as "other") and respondents per commune; ideas
carry their author's commune (card, screen, browsing filter, officials' digest)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import (
    Consultation,
    ConsultationError,
    Role,
    load_consultation,
    parse_consultation,
)
from bot.i18n import Translator, typeset
from bot.organisers.export import ExportFormat, ExportKind, export
from bot.results.communes import OTHER, ByCommune, add, compute_by_commune, shown_beside
from storage.models import Delivery, Idea, Member
from storage.repositories.communes import CommuneRepository
from storage.repositories.export import results_counts
from storage.repositories.members import MemberRepository
from storage.repositories.tallies import Tally, tally, tally_by_commune
from tests.support import (
    DEFAULT_CONSULTATION,
    answer_survey,
    default_document,
    seed_answers,
    with_dates,
    write_document,
)
from tests.test_dialogs import Harness, Wired
from tests.test_dialogs import harness as dialog_harness  # noqa: F401 (a fixture)
from tests.test_export import read_csv
from tests.test_ideas_dialogs import h as ideas_harness  # noqa: F401 (a fixture)

C = load_consultation(DEFAULT_CONSULTATION)
T0 = datetime(2020, 5, 10, 9, 0, tzinfo=UTC)
RESULTS_AT = T0 + timedelta(days=4)
# Respondents per commune (ids of the default consultation's communes of Belgium).
GROUPS = {"namur": 12, "liege": 7, "arlon": 2}
# One official per commune, and one who never gave theirs.
OFFICIALS = {"namur": 9001, "liege": 9002, "arlon": 9003, None: 9004}


def members_of() -> dict[str, list[tuple[int, dict[str, list[str]]]]]:
    """Each commune's respondents: (member id, answers), the seed's ten answers in turn."""
    seed = seed_answers()
    out: dict[str, list[tuple[int, dict[str, list[str]]]]] = {}
    n = 0
    for commune, size in GROUPS.items():
        out[commune] = []
        for _ in range(size):
            out[commune].append((100 + n, seed[n % len(seed)]))
            n += 1
    return out


def expected(answers: list[dict[str, list[str]]]) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """(seen per question, chosen per question and option), counted by hand."""
    seen: Counter[str] = Counter()
    chosen: Counter[tuple[str, str]] = Counter()
    for a in answers:
        for qid, options in a.items():
            seen[qid] += 1
            for option in options:
                chosen[(qid, option)] += 1
    return seen, chosen


async def populate(
    sessionmaker: async_sessionmaker[AsyncSession],
    consultation: Consultation = C,
    at: datetime = T0,
) -> None:
    """21 respondents in three communes, an unfinished draft in Namur, four officials. The
    survey must be open `at`."""
    async with sessionmaker() as session:
        members, communes = MemberRepository(session), CommuneRepository(session)
        for commune, people in members_of().items():
            for member_id, answers in people:
                member, _ = await members.get_or_create(member_id, f"m{member_id}")
                await members.add_role(member, Role.AMBASSADOR)
                await communes.set(member_id, commune, at)
                await answer_survey(session, consultation, member_id, answers, at)
        await members.get_or_create(999, "draft")
        await communes.set(999, "namur", at)
        await answer_survey(session, consultation, 999, {"challenges": ["nuisances"]}, at, False)
        for commune, official_id in OFFICIALS.items():
            official, _ = await members.get_or_create(official_id, f"official {commune}")
            await members.add_role(official, Role.OFFICIAL)
            if commune is not None:
                await communes.set(official_id, commune, at)
        await session.commit()


# ---------------------------------------------------------------- the rule


def test_a_group_is_shown_beside_the_network_only_if_it_and_the_rest_are_large_enough() -> None:
    assert shown_beside(12, 21, 5) and shown_beside(7, 21, 5)
    assert not shown_beside(2, 21, 5)  # too few
    # 12 of 14: the network minus the commune would be the two others' answers.
    assert not shown_beside(12, 14, 5)
    assert shown_beside(12, 12, 5)  # the commune is the whole network: nothing more to learn
    assert shown_beside(5, 10, 5) and not shown_beside(4, 10, 5)


def test_min_group_is_read_from_the_file_and_checked() -> None:
    assert C.results.min_group == 5
    document = default_document()

    def parsed(results: dict[str, int]) -> Consultation:
        return parse_consultation(yaml.safe_dump({**document, "results": results}))

    assert parsed({"min_group": 8}).results.min_group == 8
    with pytest.raises(ConsultationError, match=r"results\.min_group: at least 2"):
        parsed({"min_group": 1})
    with pytest.raises(ConsultationError, match="min_grup"):
        parsed({"min_grup": 3})


# ---------------------------------------------------------------- the counts


async def test_each_commune_counted_in_sql_and_the_network_is_their_sum(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await populate(sessionmaker)
    async with sessionmaker() as session:
        found = await compute_by_commune(session, C)
    groups = members_of()
    everyone = [a for people in groups.values() for _id, a in people]
    assert found.network.respondents == 21  # the draft is not counted
    net_seen, net_chosen = expected(everyone)
    for qr in found.network.questions:
        assert qr.seen == net_seen[qr.question.id]
        for r in qr.options:
            assert r.count == net_chosen[(qr.question.id, r.option_id)]

    for commune in ("namur", "liege"):
        view = found.view(commune)
        assert view.local is not None and not view.too_few
        assert view.local.respondents == GROUPS[commune]
        assert view.network.respondents == 21
        seen, chosen = expected([a for _id, a in groups[commune]])
        for qr in view.local.questions:
            assert qr.seen == seen[qr.question.id]
            for r in qr.options:
                assert r.count == chosen[(qr.question.id, r.option_id)], (commune, r)
                assert r.share == pytest.approx(r.count / qr.seen if qr.seen else 0)

    arlon = found.view("arlon")
    assert arlon.local is None and arlon.too_few and arlon.key is None
    assert found.view(None).too_few is False  # no commune given: the network, no sentence
    assert found.respondents("arlon") == 2


async def test_the_exports_single_reading_equals_the_results_own_counts(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The export reads the communes' tallies and the languages' counts in one pass: the
    same figures as /results' statements and as counted by hand."""
    await populate(sessionmaker)
    languages = {1: "nl", 2: "en"}  # by member id modulo 3; the others never said (None)
    async with sessionmaker() as session:
        for rest, lang in languages.items():
            await session.execute(update(Member).where(Member.id % 3 == rest).values(language=lang))
        await session.commit()
        counts = await results_counts(session, C.id)
        assert counts.by_commune == await tally_by_commune(session, C.id)
        assert add(list(counts.by_commune.values())) == await tally(session, C.id)
    by_hand: Counter[tuple[str, str, str | None]] = Counter()
    for people in members_of().values():
        for member_id, answers in people:
            for qid, options in answers.items():
                for option in options:
                    by_hand[(qid, option, languages.get(member_id % 3))] += 1
    assert counts.by_language == dict(by_hand)
    assert {lang for _q, _o, lang in counts.by_language} == {"nl", "en", None}


async def test_a_follow_up_seen_by_too_few_of_a_commune_is_withheld_for_it() -> None:
    def tally(respondents: int, focus: int) -> Tally:
        seen = {q.id: respondents for q in C.questions}
        return Tally(respondents, seen | {"rehab_focus": focus}, {})

    tallies = {"namur": tally(6, 1), "liege": tally(9, 8)}
    found = ByCommune(C, tallies, 5)
    assert found.view("namur").withheld == {"rehab_focus"}
    # Liège's 8 of 9: the rest (Namur's 1) would be given away by subtraction.
    assert found.view("liege").withheld == {"rehab_focus"}


# ---------------------------------------------------------------- organisers


async def test_export_gives_communes_by_answers_small_ones_as_other(
    sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await populate(sessionmaker)
    async with sessionmaker() as session:
        [path] = await export(
            session, C, [ExportKind.RESULTS_BY_COMMUNE], ExportFormat.CSV, tmp_path, lang="nl"
        )
        [responses] = await export(
            session, C, [ExportKind.RESPONSES], ExportFormat.CSV, tmp_path / "r"
        )
    rows = read_csv(path)
    assert [r for r in dict.fromkeys(r["commune"] for r in rows)] == ["namur", "liege", OTHER]
    names = {r["commune"]: r["commune_name"] for r in rows}
    assert names["namur"] == "Namen" and names["liege"] == "Luik"
    assert names[OTHER] == Translator().gettext(
        "Autres communes ou commune non indiquée", locale="nl"
    )
    groups = members_of()
    for commune, people in (*groups.items(),):
        key = commune if commune != "arlon" else OTHER
        seen, chosen = expected([a for _id, a in people])
        mine = [r for r in rows if r["commune"] == key]
        assert {int(r["respondents"]) for r in mine} == {len(people)}
        for r in mine:
            assert int(r["count"]) == chosen[(r["question"], r["option"])]
            assert int(r["respondents_asked"]) == seen[r["question"]]
    # Every option of every question, for each group (zeros too): a pivot table lines up.
    per_group = Counter(r["commune"] for r in rows)
    assert len(set(per_group.values())) == 1
    # The responses carry each respondent's commune.
    assert Counter(r["commune"] for r in read_csv(responses)) == GROUPS


async def test_status_shows_respondents_per_commune(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    from bot.config import Settings
    from bot.context import AppContext
    from bot.organisers.status import commune_lines

    await populate(sessionmaker)
    app = AppContext(Settings(_env_file=None), C, clock=lambda: T0 + timedelta(days=1))  # type: ignore[call-arg]
    async with sessionmaker() as session:
        fr = await commune_lines(session, app, Translator(), "fr")
        nl = await commune_lines(session, app, Translator(), "nl")
    assert fr[1:] == ["Répondants par commune :", "• Namur : 12", "• Liège : 7", "• Arlon : 2"]
    assert "• Namen: 12" in nl and "• Luik: 7" in nl


# ---------------------------------------------------------------- ideas from a commune


async def test_an_idea_carries_its_authors_commune_until_they_erase_their_data(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    from bot.members.privacy import forget
    from tests.test_ideas_dialogs import NOW, Clock, add_member, make_app

    w = make_app(tmp_path, sessionmaker, Clock(NOW))
    await add_member(sessionmaker, 7, "Amélie")
    async with sessionmaker() as session:
        await CommuneRepository(session).set(7, "namur", NOW)
        await session.commit()
    async with sessionmaker() as session:
        services = w.use(session)
        author = await services.members.repo.get(7)
        assert author is not None
        idea = await services.ideas.submit(author, "inclusion", "Des bancs", "Sur la place.")
    async with sessionmaker() as session:
        stored = await session.get(Idea, idea.id)
        card = await session.scalar(select(Delivery).where(Delivery.topic == "moderation"))
    assert stored is not None and stored.commune == "namur"
    assert card is not None and "Par Amélie · 📍 Namur" in (card.text or "")
    # A commune changed afterwards does not move the idea.
    async with sessionmaker() as session:
        await CommuneRepository(session).set(7, "liege", NOW)
        await session.commit()
        assert (await session.get(Idea, idea.id, populate_existing=True)).commune == "namur"  # type: ignore[union-attr]
    # /forget: what the author said about themselves goes with the title and the text.
    async with sessionmaker() as session:
        await forget(session, w.app, Translator(), 7)
    async with sessionmaker() as session:
        erased = await session.get(Idea, idea.id)
    assert erased is not None and erased.erased_at is not None and erased.commune is None


async def set_commune(h: Harness, member_id: int, commune: str | None) -> None:
    async with h.services.sessionmaker() as session:
        await CommuneRepository(session).set(member_id, commune, h.clock.now)
        await session.commit()


async def test_browsing_my_commune_or_the_whole_network(ideas_harness: Harness) -> None:  # noqa: F811
    from tests.test_ideas_dialogs import add_member, markup_texts, member_client, open_ideas
    from tests.test_ideas_dialogs import seed_idea as seed

    h = ideas_harness
    for member_id, name, commune in [(50, "Bob", "namur"), (51, "Bram", "gent")]:
        await add_member(h.services.sessionmaker, member_id, name)
        await set_commune(h, member_id, commune)
    bancs = await seed(h, 50, "Des bancs")
    arbres = await seed(h, 51, "Des arbres")
    async with h.services.sessionmaker() as session:  # as submitted by each
        for idea_id, commune in [(bancs, "namur"), (arbres, "gent")]:
            await session.execute(update(Idea).where(Idea.id == idea_id).values(commune=commune))
        await session.commit()

    dp = h.dispatcher()
    amelie = member_client(h, dp, 7, "Amélie")
    await add_member(h.services.sessionmaker, 7, "Amélie")
    await set_commune(h, 7, "namur")
    await open_ideas(h, amelie)
    await h.click(amelie, "L’inclusion")
    listed = [b for b in markup_texts(h.last()) if b.startswith("💡")]
    assert listed == ["💡 Des arbres · 👍 0", "💡 Des bancs · 👍 0"]
    await h.click(amelie, "📍 Namur seulement")
    page = h.last()
    assert "📍 Idées de la commune : Namur." in (page.text or "")
    assert [b for b in markup_texts(page) if b.startswith("💡")] == ["💡 Des bancs · 👍 0"]
    assert "1 idée approuvée" in (page.text or "")
    await h.click(amelie, "💡 Des bancs · 👍 0")
    assert "— m50 · 👍 0 · 📍 Namur" in (h.last().text or "")
    await h.click(amelie, "◀️ Retour")
    await h.click(amelie, "🌐 Tout le réseau")
    assert len([b for b in markup_texts(h.last()) if b.startswith("💡")]) == 2

    # A member who gave no commune is offered no filter.
    olivier = member_client(h, dp, 8, "Olivier")
    await add_member(h.services.sessionmaker, 8, "Olivier")
    await set_commune(h, 8, None)
    await open_ideas(h, olivier)
    await h.click(olivier, "L’inclusion")
    assert not any("seulement" in b or "réseau" in b for b in markup_texts(h.last()))


async def test_each_communes_officials_get_its_ideas_and_the_networks_most_supported(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    from bot.ideas.rules import idea_link
    from bot.phases.transitions import run_due
    from tests.test_ideas_dialogs import Clock, add_member, deliveries, make_app, seed_idea

    starts = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    clock = Clock(starts)
    dates = {
        "survey": (starts - timedelta(days=40), starts - timedelta(days=30)),
        "results": (starts - timedelta(days=29), starts - timedelta(days=20)),
        "ideas": (starts, starts + timedelta(days=30)),
    }
    w = make_app(tmp_path, sessionmaker, clock, dates, digest="7d")
    officials = {"namur": 3, "arlon": 4, None: 5}
    for commune, official in officials.items():
        await add_member(sessionmaker, official, f"official {commune}", "fr", Role.OFFICIAL)
        async with sessionmaker() as session:
            await CommuneRepository(session).set(official, commune, starts)
            await session.commit()
    await add_member(sessionmaker, 7, "Anne")
    await run_due(w.app, w.services, starts + timedelta(minutes=1))

    made = {}
    for title, commune, supports in [("Bancs", "namur", 1), ("Arbres", "liege", 4)]:
        made[title] = await seed_idea(w, 7, title, at=starts + timedelta(days=1))
        async with sessionmaker() as session:
            await session.execute(
                update(Idea)
                .where(Idea.id == made[title])
                .values(commune=commune, supports=supports)
            )
            await session.commit()
    await run_due(w.app, w.services, starts + timedelta(days=7, minutes=1))
    text = {
        chat: "\n".join(d.text or "" for d in await deliveries(sessionmaker, "digest:ideas", chat))
        for chat in officials.values()
    }
    bancs, arbres = (idea_link(w.app, made[t]) for t in ("Bancs", "Arbres"))
    namur = text[3]
    assert "📍 <b>Commune : Namur</b>" in namur and f"• Bancs — {bancs}" in namur
    assert f"• Arbres — {arbres}" not in namur  # not Namur's: only among the most supported
    top = namur[namur.index("Les plus soutenues du réseau") :]
    assert top.index(f"• Arbres — 👍 4 · 📍 Liège · {arbres}") < top.index("• Bancs — 👍 1")
    assert "📍 Arlon : aucune nouvelle idée cette fois." in text[4]
    assert "Les plus soutenues du réseau" in text[4]
    # No commune given: every new idea, as before.
    assert f"• Bancs — {bancs}" in text[5] and f"• Arbres — {arbres}" in text[5]
    assert "Les plus soutenues" not in text[5]


# ---------------------------------------------------------------- the broadcast


def results_app(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession], rendered: list[tuple[str, str]]
) -> Wired:
    """The results phase open at NOW (the survey was open at T0); charts drawn by stand-ins
    that record what was asked (tests/e2e draws the real ones)."""
    from bot.config import Settings
    from bot.context import AppContext
    from bot.delivery.doorbell import OutboxDoorbell
    from bot.results.charts import ChartCache
    from bot.services import AppServices

    def network(results: object, c: object, lang: str, tr: object) -> list[bytes]:
        rendered.append((lang, "network"))
        return [f"{lang}-network-{i}".encode() for i in range(len(C.questions))]

    def commune(view: object, c: object, lang: str, tr: object, name: str) -> list[bytes]:
        rendered.append((lang, name))
        return [f"{lang}-{name}-{i}".encode() for i in range(len(C.questions))]

    dates = {
        "survey": (T0 - timedelta(days=2), T0 + timedelta(days=2)),
        "results": (RESULTS_AT - timedelta(hours=1), RESULTS_AT + timedelta(days=2)),
        "ideas": (RESULTS_AT + timedelta(days=3), RESULTS_AT + timedelta(days=30)),
    }
    path = write_document(tmp_path / "c.yaml", with_dates(default_document(), dates))
    app = AppContext(Settings(bot_token=None), load_consultation(path), clock=lambda: RESULTS_AT)
    charts = ChartCache(render=network, render_commune=commune)
    return Wired(app, AppServices(sessionmaker, Translator(), charts, OutboxDoorbell()))


async def texts_of(sessionmaker: async_sessionmaker[AsyncSession], chat_id: int) -> list[Delivery]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.chat_id == chat_id).order_by(Delivery.id)
        )
        return list(rows.all())


def option_line(
    label: str, local: tuple[int, float] | None, network: tuple[int, float], lang: str
) -> str:
    from bot.i18n import percent

    tr = Translator()
    if local is None:
        return tr.gettext("• {option} — réseau : {count} ({percent})", locale=lang).format(
            option=label, count=network[0], percent=percent(network[1], lang)
        )
    return tr.gettext(
        "• {option} — {commune} : {local} ({local_percent}) · réseau : {count} ({percent})",
        locale=lang,
    ).format(
        option=label,
        commune="{commune}",
        local=local[0],
        local_percent=percent(local[1], lang),
        count=network[0],
        percent=percent(network[1], lang),
    )


async def test_officials_get_their_communes_results_beside_the_networks_when_broadcast(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    from html import escape

    from bot.phases.transitions import run_due

    rendered: list[tuple[str, str]] = []
    w = results_app(tmp_path, sessionmaker, rendered)
    await populate(sessionmaker, w.app.consultation)
    done = await run_due(w.app, w.services)
    assert "results:open:results to 25" in done  # 21 ambassadors and 4 officials
    # The network's album in each language, the communes' only where they are shown.
    assert sorted(set(rendered)) == sorted(
        [("fr", "network"), ("nl", "network"), ("en", "network"), ("fr", "Namur"), ("fr", "Liège")]
    )

    groups = members_of()
    everyone = [a for people in groups.values() for _id, a in people]
    net_seen, net_chosen = expected(everyone)
    c = w.app.consultation
    for commune in ("namur", "liege"):
        sent = await texts_of(sessionmaker, OFFICIALS[commune])
        text = "\n".join(d.text or "" for d in sent)
        name = c.commune(commune).label("fr", "fr")  # type: ignore[union-attr]
        assert typeset(f"{name} : {GROUPS[commune]} · réseau : 21 répondants", "fr") in text
        seen, chosen = expected([a for _id, a in groups[commune]])
        for q in c.questions:
            for o in q.options:
                label = escape(c.text(o.text or o.label, "fr"))
                n, total = chosen[(q.id, o.id)], net_chosen[(q.id, o.id)]
                withheld = seen[q.id] < 5 or net_seen[q.id] - seen[q.id] < 5
                line = option_line(
                    label,
                    None if withheld else (n, n / seen[q.id] if seen[q.id] else 0),
                    (total, total / net_seen[q.id]),
                    "fr",
                ).format(commune=name)
                assert typeset(line, "fr") in text, line
        assert "Trop peu de réponses à " + name + " (" not in text
        media = [d.media_id for d in sent if d.media_id]
        assert len(media) == 1  # one album of seven charts

    arlon = await texts_of(sessionmaker, OFFICIALS["arlon"])
    arlon_text = "\n".join(d.text or "" for d in arlon)
    assert (
        typeset(
            "ℹ️ Trop peu de réponses à Arlon (moins de 5) pour les montrer séparément : "
            "voici celles du réseau.",
            "fr",
        )
        in arlon_text
    )
    # The network's only.
    assert "Arlon :" not in arlon_text.replace("\xa0", " ") and "21 répondants" in arlon_text
    # The sentence comes before the charts; the album is the network's, shared.
    kinds = ["chart" if d.media_id else "text" for d in arlon]
    assert kinds.index("chart") > next(i for i, d in enumerate(arlon) if "Arlon" in (d.text or ""))
    # An official who gave no commune gets the default: one message, the charts on 📊.
    nobody = await texts_of(sessionmaker, OFFICIALS[None])
    assert [d.media_id for d in nobody if d.media_id] == []
    assert nobody and "📊" in (nobody[-1].reply_markup or "")
    assert "Trop peu" not in "\n".join(d.text or "" for d in nobody)
    # Members get the network's, whatever their commune.
    member = "\n".join(d.text or "" for d in await texts_of(sessionmaker, groups["namur"][0][0]))
    assert "Namur :" not in member.replace("\xa0", " ") and "21 répondants" in member


# ---------------------------------------------------------------- an official's commune


async def test_an_official_is_asked_their_commune_before_their_first_results(
    dialog_harness: Harness,  # noqa: F811
) -> None:
    from tests.test_dialogs import NOW, button
    from tests.test_screens import PhotoBot

    h = dialog_harness
    h.bot = PhotoBot()
    h.services.charts.render = lambda results, c, lang, tr: [b"network-1", b"network-2"]
    h.services.charts.render_commune = lambda view, c, lang, tr, name: [b"mine-1", b"mine-2"]
    await populate(h.services.sessionmaker, h.app.consultation, at=NOW)
    h.clock.now = NOW + timedelta(days=11)  # the survey closed, the results are out
    official = h.client(user_id=OFFICIALS[None])  # never asked, no invitation's commune

    await official.send("/results")
    assert "Dans quelle commune habitez-vous" in (h.last().text or "")
    await official.send("5000")
    await official.click(h.last(), button("Namur"))
    sent = "\n".join(h.bot.texts())
    assert typeset("Namur : 12 · réseau : 21 répondants", "fr") in sent
    async with h.services.sessionmaker() as session:
        assert (await CommuneRepository(session).of_member(OFFICIALS[None])).commune == "namur"
    # Asked once: the next /results come at once.
    before = len(h.bot.texts())
    await official.send("/results")
    assert typeset("Namur : 12 · réseau : 21 répondants", "fr") in "\n".join(h.bot.texts()[before:])

    # An ambassador who answered the survey cannot move their answers to another commune now.
    member_id = members_of()["arlon"][0][0]
    ambassador = h.client(user_id=member_id)
    await ambassador.send("/start")
    assert "Ma commune" not in str(h.last().reply_markup)
