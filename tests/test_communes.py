"""Communes: the file's section and its checks, finding one, a member's commune asked once
(or told by an invitation), changed from the menu, shown by /mydata, erased by /forget,
exported with the responses."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from aiogram.types import CallbackQuery, Chat, Message, Update
from aiogram_dialog.test_tools import BotClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.communes.lookup import CommuneDirectory
from bot.consultation import Role, load_consultation
from bot.i18n import Translator
from bot.members.invitations import create_invitation
from bot.organisers.export import ExportFormat, ExportKind, export
from consultbot.cli import main
from storage.hot_path.statements import Direct
from storage.repositories.communes import NOT_ASKED, CommuneRepository, MemberCommune
from storage.repositories.members import MemberRepository
from tests.support import DEFAULT_CONSULTATION, answer_survey, default_document, seed_answers
from tests.test_dialogs import NOW, Harness, button
from tests.test_dialogs import harness as dialog_harness  # noqa: F401 (a fixture)
from tests.test_export import read_csv

ASKED = "Dans quelle commune habitez-vous"


@pytest.fixture
def h(dialog_harness: Harness) -> Harness:  # noqa: F811 (the fixture imported above)
    """test_dialogs.py's harness: the bot's dispatcher over a SQLite database, a clock."""
    return dialog_harness


def directory() -> CommuneDirectory:
    c = load_consultation(DEFAULT_CONSULTATION)
    return CommuneDirectory(c.communes, c.source_language)


# ---------------------------------------------------------------- the file and the lookup


def test_the_default_consultation_ships_belgiums_communes() -> None:
    c = load_consultation(DEFAULT_CONSULTATION)
    assert len(c.communes) == 565  # since the mergers of 1 January 2025
    names = {m.id: m.name for m in c.communes}
    assert names["bruxelles"] == {"fr": "Bruxelles", "nl": "Brussel", "en": "Brussels"}
    assert names["liege"] == {"fr": "Liège", "nl": "Luik", "en": "Liège"}
    assert names["antwerpen"] == {"fr": "Anvers", "nl": "Antwerpen", "en": "Antwerp"}
    assert names["mons"] == {"fr": "Mons", "nl": "Bergen", "en": "Mons"}
    assert names["leuven"] == {"fr": "Louvain", "nl": "Leuven", "en": "Leuven"}
    assert "5000" in c.communes[[m.id for m in c.communes].index("namur")].postal_codes


def test_postal_code_or_first_letters_in_any_language() -> None:
    d = directory()

    def found(query: str, lang: str = "fr") -> list[str]:
        return [d.label(m, lang) for m in d.search(query).communes]

    assert found("5000") == ["Namur"]
    assert found("brux") == ["Bruxelles"] and found("brux", "nl") == ["Brussel"]
    assert found("Brussel", "en") == ["Brussels"]
    assert found("luik") == ["Liège"] and found("LIEGE", "nl") == ["Luik"]
    assert found("gand", "nl") == ["Gent"]
    assert found("saint gilles") == ["Saint-Gilles"]  # hyphens and case aside
    assert set(found("1040")) == {"Bruxelles", "Etterbeek"}  # one code, two communes
    assert found("zzz") == [] and found("9999") == [] and found("  ") == []
    many = d.search("sint")
    assert len(many.communes) == 6 and many.more  # a handful, and "type more"


def _check(path: Path) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["check", str(path)])
    return code, out.getvalue()


def _write(tmp_path: Path, communes: list[dict[str, object]]) -> Path:
    document = default_document()
    document["communes"] = communes
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    return path


def test_check_locates_errors_in_an_inline_communes_section(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"id": "x", "name": {"fr": "X"}, "postcodes": []}, {"id": "y"}])
    code, out = _check(path)
    assert code == 1
    assert "communes[x].postcodes: unknown key" in out and "communes[y].name: missing" in out
    path = _write(
        tmp_path,
        [
            {"id": "namur", "name": {"fr": "Namur", "nl": "Namen"}, "postal_codes": [5000, "5000"]},
            {"id": "namur", "name": {"nl": "Gent"}, "postal_codes": ["90!0"], "region": "Flanders"},
            {"id": "Bad Id", "name": {"fr": "X"}},
        ],
    )
    code, out = _check(path)
    assert code == 1
    lines = path.read_text().splitlines()
    problems = [line for line in out.splitlines() if "communes" in line]
    duplicate = next(p for p in problems if "duplicate commune id 'namur'" in p)
    line = int(duplicate.split(":")[1])  # located at the second commune's id in the file
    assert lines[line - 1].strip() == "- id: namur" and lines.index(lines[line - 1]) < line - 1
    for expected in (
        "communes[namur].postal_codes[1]: postal code 5000 is listed twice",
        "communes[namur].name.fr: missing fr name",
        "communes[namur].postal_codes[0]: '90!0' is not a postal code",
        "communes[namur].region: use lowercase",
        "communes[Bad Id].id: commune id 'Bad Id'",
    ):
        assert any(expected in p for p in problems), (expected, out)


def test_check_names_the_communes_file_and_its_line(tmp_path: Path) -> None:
    listing = (DEFAULT_CONSULTATION.parent / "communes-be.yaml").read_text().splitlines()
    at = next(i for i, line in enumerate(listing) if line.startswith("- {id: namur,"))
    listing[at] = listing[at].replace("name: {fr: Namur,", 'name: {fr: "",')
    (tmp_path / "communes-be.yaml").write_text("\n".join(listing) + "\n")
    consultation = tmp_path / "c.yaml"
    consultation.write_text(DEFAULT_CONSULTATION.read_text())
    code, out = _check(consultation)
    assert code == 1
    expected = f"{tmp_path / 'communes-be.yaml'}:{at + 1}: communes[namur].name.fr: missing fr name"
    assert expected in out, out
    (tmp_path / "communes-be.yaml").unlink()
    code, out = _check(consultation)
    assert code == 1 and "communes.file: cannot read" in out and f"{consultation}:" in out


# ---------------------------------------------------------------- asked once, before the survey


async def _commune(h: Harness, member_id: int = 7) -> MemberCommune:
    async with h.services.sessionmaker() as session:
        return await CommuneRepository(session).of_member(member_id)


async def _open_survey(h: Harness, client: BotClient, lang: str = "fr") -> None:
    await client.send("/start")
    await h.click(client, Translator().gettext("📝 Répondre au sondage", locale=lang)[2:])


async def test_a_postal_code_finds_namur_then_the_survey_opens(h: Harness) -> None:
    client = h.client()
    await _open_survey(h, client)
    assert ASKED in (h.last().text or "")
    await client.send("5000")
    shown = len(h.messages.sent_messages)
    await h.click(client, "Namur")
    assert h.bot.alerts()[-1] == "📍 Commune enregistrée : Namur."
    # Straight to the first question: the menu is not shown in between.
    screens = [m.text or "" for m in h.messages.sent_messages[shown:]]
    assert len(screens) == 1 and "Question 1 / " in screens[0], screens
    assert await _commune(h) == MemberCommune("namur", True)
    # Never asked again: back to the menu, the survey opens at once.
    await _open_survey(h, client)
    assert "Question 1 / " in (h.last().text or "")


async def test_the_survey_path_reads_and_saves_the_commune_without_the_orm_session(
    h: Harness,
) -> None:
    """Asked before the first question, answered in the dialog: as a tap's statements, not
    through the update's ORM session (a connection's checkout, BEGIN and COMMIT each)."""
    engine = h.services.sessionmaker.kw["bind"]
    orm: list[str] = []
    direct: list[str] = []

    def through_orm(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        if "commune" in sql and "members" in sql:
            orm.append(sql)

    event.listen(engine.sync_engine, "before_cursor_execute", through_orm)
    Direct.of(engine).trace(lambda sql: direct.append(sql) if "commune" in sql else None)
    try:
        client = h.client()
        await _open_survey(h, client)
        assert ASKED in (h.last().text or "")
        await client.send("5000")
        await h.click(client, "Namur")
        assert "Question 1 / " in (h.last().text or "")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", through_orm)
        Direct.of(engine).trace(None)
    assert orm == []
    assert any(sql.lstrip().upper().startswith("SELECT") for sql in direct), direct
    assert any(sql.lstrip().upper().startswith("UPDATE MEMBERS") for sql in direct), direct
    assert await _commune(h) == MemberCommune("namur", True)


async def test_brux_shows_brussel_to_a_dutch_speaking_member(h: Harness) -> None:
    client = h.client(language="nl")
    await _open_survey(h, client, "nl")
    assert "In welke gemeente woont u?" in (h.last().text or "")
    await client.send("brux")
    markup = str(h.last().reply_markup)
    assert "Brussel" in markup and "Bruxelles" not in markup
    await h.click(client, "Brussel")
    assert h.bot.alerts()[-1] == "📍 Gemeente bewaard: Brussel."
    assert await _commune(h) == MemberCommune("bruxelles", True)


async def test_no_match_is_answered_politely_and_asked_again(h: Harness) -> None:
    client = h.client()
    await _open_survey(h, client)
    await client.send("Atlantis")
    assert "Aucune commune ne correspond à « Atlantis »" in h.bot.texts()[-1]
    assert ASKED in (h.last().text or "")
    await client.send("luik")  # a Dutch name, shown in French
    await h.click(client, "Liège")
    assert await _commune(h) == MemberCommune("liege", True)


async def test_rather_not_say_is_an_answer_never_asked_again(h: Harness) -> None:
    client = h.client()
    await _open_survey(h, client)
    await h.click(client, "Je préfère ne pas le dire")
    assert h.bot.alerts()[-1] == "Entendu : nous ne vous la demanderons plus."
    assert "Question 1 / " in (h.last().text or "")
    assert await _commune(h) == MemberCommune(None, True)
    await _open_survey(h, client)
    assert "Question 1 / " in (h.last().text or "")
    await client.send("/mydata")
    assert "Commune : vous avez préféré ne pas la dire" in h.bot.texts()[-1]


async def test_a_member_invited_for_a_commune_is_never_asked(h: Harness) -> None:
    async with h.services.sessionmaker() as session:
        token = await create_invitation(session, Role.AMBASSADOR, 5, None, NOW, commune="namur")
    client = h.client()
    await client.send(f"/start inv_{token}")
    await h.click(client, "Répondre au sondage")
    assert "Question 1 / " in (h.last().text or "")
    assert await _commune(h) == MemberCommune("namur", True)
    await client.send("/mydata")
    assert "Commune : Namur" in h.bot.texts()[-1]


async def test_changed_from_the_menu_until_the_survey_closes(h: Harness) -> None:
    client = h.client()
    await _open_survey(h, client)
    await client.send("5000")
    await h.click(client, "Namur")
    await client.send("/start")
    await h.click(client, "Ma commune")
    assert "Votre commune : Namur." in (h.last().text or "")
    await client.send("lui")
    await h.click(client, "Liège")
    assert "Phase en cours" in (h.last().text or "")  # back at the menu
    assert await _commune(h) == MemberCommune("liege", True)
    # A pick screen left open while the survey closes: nothing changes, the member is told.
    await h.click(client, "Ma commune")
    await client.send("5000")
    stale = h.last()
    survey = h.app.consultation.phases[0]
    h.clock.now = survey.ends + timedelta(minutes=1)
    await client.click(stale, button("Namur"))
    assert h.bot.alerts()[-1] == "Le sondage est clos : votre commune ne peut plus être changée."
    assert await _commune(h) == MemberCommune("liege", True)
    assert "Ma commune" not in str(h.last().reply_markup)  # the menu no longer offers it


async def test_a_forged_commune_button_changes_nothing(h: Harness) -> None:
    client = h.client()
    await _open_survey(h, client)
    await client.send("5000")
    screen = h.last()
    namur = screen.reply_markup.inline_keyboard[0][0]  # type: ignore[union-attr]
    assert namur.text == "Namur"
    for n, item in enumerate(["nowhere", "x" * 40, ""]):
        forged = namur.callback_data.rsplit(":", 1)[0] + f":{item}"  # type: ignore[union-attr]
        await client.dp.feed_update(
            h.bot,
            Update(
                update_id=900 + n,
                callback_query=CallbackQuery(
                    id=f"forged{n}",
                    from_user=client.user,
                    chat_instance="-",
                    message=screen,
                    data=forged,
                ),
            ),
        )
        assert await _commune(h) == NOT_ASKED
    assert "Cette commune n’est pas dans la liste" in h.bot.alerts()[-1]


async def test_forget_erases_the_commune(h: Harness) -> None:
    client = h.client()
    await _open_survey(h, client)
    await client.send("5000")
    await h.click(client, "Namur")
    await client.send("/mydata")
    assert "Commune : Namur" in h.bot.texts()[-1]
    await client.send("/forget")
    sent = h.bot.calls[-1]
    prompt = Message(
        message_id=78,
        date=NOW,
        chat=Chat(id=7, type="private"),
        text=sent.text,  # type: ignore[attr-defined]
        reply_markup=sent.reply_markup,  # type: ignore[attr-defined]
    )
    await client.click(prompt, button("Oui, tout effacer"))
    assert await _commune(h) == NOT_ASKED
    # Back again: a newcomer, asked again.
    await _open_survey(h, client)
    assert ASKED in (h.last().text or "")


async def test_exports_carry_the_commune(
    sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    consultation = load_consultation(DEFAULT_CONSULTATION)
    survey = consultation.phases[0]
    async with sessionmaker() as session:
        members = MemberRepository(session)
        for member_id, answers in zip((1, 2, 3), seed_answers(), strict=False):
            await members.get_or_create(member_id, "Zéphyrine")
            if member_id == 1:
                await CommuneRepository(session).set(member_id, "namur", survey.starts)
            elif member_id == 2:  # rather not say; member 3 was never asked
                await CommuneRepository(session).set(member_id, None, survey.starts)
            await answer_survey(session, consultation, member_id, answers)
        [path] = await export(
            session, consultation, (ExportKind.RESPONSES,), ExportFormat.CSV, tmp_path
        )
    rows = read_csv(path)
    assert list(rows[0])[:4] == ["respondent", "language", "commune", "submitted_at"]
    assert sorted(r["commune"] for r in rows) == ["", "", "namur"]


def test_invite_for_a_commune_from_the_command_line(tmp_path: Path) -> None:
    from tests.test_cli import assert_clean_failure, consultbot, migrated

    env = {"DATABASE_URL": migrated(tmp_path), "CONSULTATION_FILE": str(DEFAULT_CONSULTATION)}
    for wanted in ("namur", "5000"):
        invited = consultbot(
            ["invite", "ambassador", "--commune", wanted, "--username", "b"], tmp_path, **env
        )
        assert invited.returncode == 0, invited.stderr
        assert invited.stdout.startswith("https://t.me/b?start=inv_")
    audit = consultbot(["audit"], tmp_path, **env)
    assert audit.stdout.count("commune=namur") == 2, audit.stdout
    vague = consultbot(
        ["invite", "ambassador", "--commune", "sint", "--username", "b"], tmp_path, **env
    )
    assert_clean_failure(vague, "--commune sint could be", "give its id")
    unknown = consultbot(
        ["invite", "official", "--commune", "atlantis", "--username", "b"], tmp_path, **env
    )
    assert_clean_failure(unknown, "no commune of")
