"""The council's report (issue 18, item 6): `consultbot report` and the organisers' button write
one A4 PDF: a cover (title, dates, respondents, commentary), then a page per counted question
with its chart and counts, page numbers, the language's texts and numbers."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiogram.methods import SendDocument, SendMediaGroup, SendMessage, TelegramMethod
from aiogram.types import Chat, Document, Message, PhotoSize
from pypdf import PdfReader
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.consultation import PhaseKind, load_consultation
from bot.context import AppContext
from bot.i18n import Translator, at_place
from bot.results.communes import ByCommune
from bot.results.report import (
    ReportFigures,
    build_report,
    commune_figures,
    number,
    report_texts,
)
from bot.results.report_handlers import ReportButton, parse_arguments
from bot.results.report_pdf import A4_IN, render_pdf
from bot.results.tally import rank
from storage.db import make_engine, make_sessionmaker
from storage.repositories.communes import CommuneRepository
from storage.repositories.members import MemberRepository
from storage.repositories.tallies import Tally
from tests.support import DEFAULT_CONSULTATION, SEED_COUNTS, answer_survey, seed_answers
from tests.test_cli import assert_clean_failure, consultbot, migrated
from tests.test_dialogs import Harness, RecordingBot, button
from tests.test_dialogs import harness as dialog_harness  # noqa: F401 (a fixture)
from tests.test_results_communes import GROUPS, expected, members_of, populate

C = load_consultation(DEFAULT_CONSULTATION)
COUNTED = 7  # the default consultation's counted questions: a page each, after the cover


def pdf_text(data: bytes) -> tuple[int, str, list[tuple[float, float]]]:
    reader = PdfReader(io.BytesIO(data))
    sizes = [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages]
    # Lines as one text (a title wraps where its width says); no-break spaces kept.
    text = re.sub(r"[ \n]+", " ", "\n".join(p.extract_text() for p in reader.pages))
    return len(reader.pages), text, sizes


async def seed(sessionmaker: async_sessionmaker[AsyncSession], consultation: Any = C) -> None:
    async with sessionmaker() as session:
        for i, answers in enumerate(seed_answers(), start=100):
            await MemberRepository(session).get_or_create(i, f"m{i}")
            await answer_survey(session, consultation, i, answers)


def test_report_help() -> None:
    result = consultbot(["report", "--help"], Path.cwd())
    assert result.returncode == 0, result.stderr
    for option in ("--lang", "--commune", "--out"):
        assert option in result.stdout
    assert "PDF" in result.stdout


async def test_report_on_seeded_data(tmp_path: Path) -> None:
    url = migrated(tmp_path)
    engine = make_engine(url)
    await seed(make_sessionmaker(engine))
    await engine.dispose()
    env = {"DATABASE_URL": url, "CONSULTATION_FILE": str(DEFAULT_CONSULTATION)}
    out = tmp_path / "conseil.pdf"
    result = consultbot(["report", "--out", str(out)], tmp_path, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    pages, text, sizes = pdf_text(out.read_bytes())
    assert pages == 1 + COUNTED
    # A4 in points (72 to the inch).
    assert all(abs(w - A4_IN[0] * 72) < 1 and abs(h - A4_IN[1] * 72) < 1 for w, h in sizes)
    assert "Pour un déconfinement sécure au niveau local" in text
    assert "Rapport des résultats" in text
    assert "Sondage\u00a0: du 4 mai 2020 au 16 mai 2020" in text
    assert "10 répondants pour l’ensemble du réseau" in text
    assert "Voici les résultats du sondage, question par question." in text
    assert "Commentaire" not in text  # none approved yet
    assert f"Page 1 / {pages}" in text and f"Page {pages} / {pages}" in text
    # The counts of the seed, as a French reader writes them: "7 (70 %)" with a no-break space.
    assert "7 (70\u00a0%)" in text and "8 (80\u00a0%)" in text
    assert "La participation citoyenne et la proximité avec les services" in text
    assert "4 personnes ont répondu" in text  # the follow-up, asked of four

    nl = tmp_path / "raad.pdf"
    result = consultbot(["report", "--lang", "nl", "--out", str(nl)], tmp_path, **env)
    assert result.returncode == 0, result.stderr
    _pages, text, _sizes = pdf_text(nl.read_bytes())
    assert "Voor een veilige afbouw van de lockdown" in text
    assert "Resultatenrapport" in text and "10 deelnemers voor het hele netwerk" in text
    assert "7 (70%)" in text

    default = consultbot(["report"], tmp_path, **env)
    assert default.returncode == 0, default.stderr
    assert (tmp_path / "reports" / "deconfinement-2020-report-fr.pdf").exists()


def test_report_refuses_an_unknown_commune_or_language(tmp_path: Path) -> None:
    url = migrated(tmp_path)
    env = {"DATABASE_URL": url, "CONSULTATION_FILE": str(DEFAULT_CONSULTATION)}
    unknown = consultbot(["report", "--commune", "atlantis"], tmp_path, **env)
    assert_clean_failure(unknown, "--commune atlantis", "no commune")
    language = consultbot(["report", "--lang", "de"], tmp_path, **env)
    assert_clean_failure(language, "--lang de", "fr, nl, en")
    by_code = consultbot(["report", "--commune", "4000", "--out", "l.pdf"], tmp_path, **env)
    assert by_code.returncode == 0, by_code.stderr
    _pages, text, _sizes = pdf_text((tmp_path / "l.pdf").read_bytes())
    assert "Rapport des résultats — Liège" in text
    # Nobody answered yet: Liège's none is below the minimum, said as the bot says it.
    assert "Trop peu de réponses à Liège (moins de 5)" in text


async def test_report_for_a_commune_by_its_postal_code(tmp_path: Path) -> None:
    url = migrated(tmp_path)
    engine = make_engine(url)
    await populate(make_sessionmaker(engine))
    await engine.dispose()
    env = {"DATABASE_URL": url, "CONSULTATION_FILE": str(DEFAULT_CONSULTATION)}
    result = consultbot(["report", "--commune", "5000", "--lang", "nl"], tmp_path, **env)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "reports" / "deconfinement-2020-report-nl-namur.pdf"
    assert result.stdout.strip() == str(out.relative_to(tmp_path))
    _pages, text, _sizes = pdf_text(out.read_bytes())
    assert "Resultatenrapport — Namen" in text
    assert "21 deelnemers voor het hele netwerk" in text and "12 deelnemers in Namen" in text


def test_numbers_as_each_language_writes_them() -> None:
    assert number(12345, "fr") == "12\u202f345"
    assert number(12345, "nl") == "12.345"
    assert number(12345, "en") == "12,345"


def test_a_commune_beside_the_network_has_its_columns() -> None:
    network = rank(C, Tally(10, {q: 10 for q in SEED_COUNTS}, _chosen()))
    local = rank(C, Tally(6, {q: 6 for q in SEED_COUNTS}, {k: 3 for k in _chosen()}))
    app = AppContext(Settings(bot_token=None), C)
    texts = report_texts(
        app,
        ReportFigures(network, "liege", local),
        (["The results, question by question."], ["An approved commentary."]),
        "en",
        Translator(),
        datetime(2020, 5, 20, tzinfo=UTC),
    )
    assert texts.series == ("Liège", "Network")
    pages, text, _sizes = pdf_text(render_pdf(texts))
    assert pages == 1 + COUNTED
    assert "6 respondents in Liège" in text and "50%" in text


# ------------------------------------------------ a commune beside the network

APP = AppContext(Settings(bot_token=None), C)
NOW = datetime(2020, 5, 20, tzinfo=UTC)
FIGURE = re.compile(r"(\d+) \((\d+)\u00a0%\)")  # a bar's "7 (58 %)"


def bars(text: str) -> set[tuple[int, int]]:
    return {(int(n), int(p)) for n, p in FIGURE.findall(text)}


def figures_of(answers: list[dict[str, list[str]]], skip: str = "") -> set[tuple[int, int]]:
    """Every option's "count (share %)" of a group, counted by hand (but question `skip`'s)."""
    seen, chosen = expected(answers)
    return {
        (chosen[(q.id, o.id)], round(100 * chosen[(q.id, o.id)] / seen[q.id]))
        for q in C.questions
        if seen[q.id] and q.id != skip
        for o in q.options
    }


async def test_a_communes_report_shows_its_figures_beside_the_networks(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Namur's 12 of 21: its counts and the network's, question by question; the follow-up
    asked of 6 of Namur's and 3 others is the network's only (the rest is too small)."""
    await populate(sessionmaker)
    async with sessionmaker() as session:
        pdf = await build_report(session, APP, Translator(), "fr", "namur", NOW)
    pages, text, _sizes = pdf_text(pdf)
    assert pages == 1 + COUNTED
    assert "Rapport des résultats — Namur" in text
    assert "21 répondants pour l’ensemble du réseau" in text and "12 répondants à Namur" in text
    assert "Namur\u00a0: 12 · réseau\u00a0: 21 personnes ont répondu" in text
    groups = members_of()
    namur = [a for _id, a in groups["namur"]]
    everyone = [a for people in groups.values() for _id, a in people]
    # Each group's shares of its own respondents: Namur's differ from the network's.
    local, network = figures_of(namur), figures_of(everyone)
    assert local - network, "the test needs figures that only Namur has"
    # Every question's but the follow-up's (6 of Namur's, 3 others: too few of the rest).
    assert figures_of(namur, skip="rehab_focus") <= bars(text)
    assert not figures_of(
        [{"rehab_focus": a["rehab_focus"]} for a in namur if "rehab_focus" in a]
    ) & (bars(text) - network)
    assert network <= bars(text)
    assert "Trop peu de réponses à Namur à cette question pour les montrer séparément." in text
    assert "Réseau\u00a0: 9 personnes ont répondu" in text  # the follow-up: the network's
    assert "Trop peu de réponses à Namur (moins" not in text
    assert not re.search(r" [?!:;]", text)  # French typography: no-break spaces only


async def test_a_small_communes_report_shows_the_networks_only_and_says_why(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Arlon's 2 of 21: the network's figures and the bot's sentence, never Arlon's own."""
    await populate(sessionmaker)
    async with sessionmaker() as session:
        pdf = await build_report(session, APP, Translator(), "fr", "arlon", NOW)
    pages, text, _sizes = pdf_text(pdf)
    assert pages == 1 + COUNTED
    assert (
        "Trop peu de réponses à Arlon (moins de 5) pour les montrer séparément\u00a0: voici "
        "celles du réseau." in text
    )
    assert "21 répondants pour l’ensemble du réseau" in text
    assert "2 répondants" not in text and "Arlon\u00a0:" not in text
    everyone = [a for people in members_of().values() for _id, a in people]
    assert bars(text) == figures_of(everyone)  # the network's bars, and no others
    assert GROUPS["arlon"] == 2


def test_a_commune_with_too_small_a_rest_is_not_shown_either() -> None:
    """12 in Namur, 2 elsewhere: the network minus Namur would be the two others' answers."""
    seen = {q.id: 12 for q in C.questions}
    tallies = {"namur": Tally(12, seen, {}), "arlon": Tally(2, {q: 2 for q in seen}, {})}
    found = commune_figures(ByCommune(C, tallies, 5), "namur", C, "en", Translator())
    assert found.local is None and found.commune == "namur"
    texts = report_texts(APP, found, ([], []), "en", Translator(), NOW)
    _pages, text, _sizes = pdf_text(render_pdf(texts))
    assert "The answers from Namur are not shown separately: the rest of the network" in text
    assert "14 respondents for the whole network" in text and "12 respondents" not in text


def test_french_contracts_a_communes_article() -> None:
    sentence = "Trop peu de réponses à {c} à cette question. À {c}, rien."
    for name, said in [
        ("Le Roeulx", "Trop peu de réponses au Roeulx à cette question. Au Roeulx, rien."),
        ("Les Bons Villers", "Trop peu de réponses aux Bons Villers à cette question. Aux Bons "
         "Villers, rien."),
        ("La Louvière", sentence.format(c="La Louvière")),
        ("Namur", sentence.format(c="Namur")),
        ("Lessines", sentence.format(c="Lessines")),
    ]:  # fmt: skip
        assert at_place(sentence.format(c=name), name, "fr") == said
    assert at_place("12 deelnemers in Le Roeulx", "Le Roeulx", "nl") == "12 deelnemers in Le Roeulx"
    found = commune_figures(
        ByCommune(C, {"le_roeulx": Tally(2, {}, {}), None: Tally(30, {}, {})}, 5),
        "le_roeulx",
        C,
        "fr",
        Translator(),
    )
    assert found.notice is not None and found.notice.startswith("Trop peu de réponses au Roeulx")


def _chosen() -> dict[tuple[str, str], int]:
    return {(q, o): n for q, counts in SEED_COUNTS.items() for o, n in counts.items()}


def test_the_report_command_reads_a_language_and_a_commune() -> None:
    app = AppContext(Settings(bot_token=None), C)
    assert parse_arguments(app, None, "fr") == ("fr", None)
    assert parse_arguments(app, "nl", "fr") == ("nl", None)
    assert parse_arguments(app, "en 4000", "fr") == ("en", "liege")
    assert parse_arguments(app, "liege", "nl") == ("nl", "liege")
    assert parse_arguments(app, "atlantis", "fr") is None


# ------------------------------------------------ the organisers' button, in the bot


class DocumentBot(RecordingBot):
    """Also answers sendDocument and sendMediaGroup, with the file_ids Telegram would give."""

    def __init__(self) -> None:
        super().__init__()
        self.file_ids: list[str] = []

    async def __call__(
        self, method: TelegramMethod[Any], request_timeout: int | None = None
    ) -> Any:
        if isinstance(method, SendDocument):
            self.calls.append(method)
            self.file_ids.append(f"doc-{len(self.file_ids)}")
            return Message(
                message_id=next(self._ids),
                date=datetime.now(UTC),
                chat=Chat(id=int(method.chat_id), type="private"),
                document=Document(file_id=self.file_ids[-1], file_unique_id="u"),
            )
        if isinstance(method, SendMediaGroup):  # the /results album
            self.calls.append(method)
            return [
                Message(
                    message_id=next(self._ids),
                    date=datetime.now(UTC),
                    chat=Chat(id=int(method.chat_id), type="private"),
                    photo=[PhotoSize(file_id=f"p{i}", file_unique_id=f"p{i}", width=1, height=1)],
                )
                for i, _ in enumerate(method.media)
            ]
        return await super().__call__(method, request_timeout)


def offer(h: Harness) -> Message:
    """The /results message that carries the report's button, as the client sees it."""
    [sent] = [
        c for c in h.bot.calls if isinstance(c, SendMessage) and "collège ou au conseil" in c.text
    ]
    return Message(
        message_id=1,
        date=datetime.now(UTC),
        chat=Chat(id=int(sent.chat_id), type="private"),
        text=sent.text,
        reply_markup=sent.reply_markup,
    )


@pytest.fixture
def document_bot(dialog_harness: Harness) -> Harness:  # noqa: F811 (the fixture imported above)
    dialog_harness.bot = DocumentBot()
    return dialog_harness


async def test_the_organisers_button_sends_the_pdf(document_bot: Harness) -> None:
    h = document_bot
    await seed(h.services.sessionmaker, h.app.consultation)
    dp = h.dispatcher()
    olga = h.client(user_id=1, dp=dp)
    await olga.send("/results")
    await olga.click(offer(h), button("Rapport PDF pour le conseil"))
    [document] = [c for c in h.bot.calls if isinstance(c, SendDocument)]
    assert document.document.filename == "deconfinement-2020-report-fr.pdf"  # type: ignore[union-attr]
    pages, text, _sizes = pdf_text(document.document.data)  # type: ignore[union-attr]
    assert pages == 1 + COUNTED and "10 répondants pour l’ensemble du réseau" in text
    assert h.bot.alerts()[-1] == "Le rapport est arrivé ci-dessous."
    # Tapped again, the same counts: sent again by file_id, not drawn a second time.
    await olga.click(offer(h), button("Rapport PDF pour le conseil"))
    again = [c for c in h.bot.calls if isinstance(c, SendDocument)]
    assert len(again) == 2 and again[1].document == h.bot.file_ids[0]


async def test_an_organisers_report_for_a_commune_follows_its_counts(
    document_bot: Harness,
) -> None:
    """/report fr 5000: Namur's figures beside the network's; drawn again when a member moves
    from Namur to Liège (the network's counts unchanged, Namur's not)."""
    h = document_bot
    survey = h.app.consultation.phase(PhaseKind.SURVEY)
    assert survey is not None
    at = survey.starts + (survey.ends - survey.starts) / 2
    await populate(h.services.sessionmaker, h.app.consultation, at)
    olga = h.client(user_id=1)
    await olga.send("/results")
    assert "<code>/report fr</code> suivi de son code postal" in offer(h).text  # type: ignore[operator]
    await olga.send("/report fr 5000")
    [document] = [c for c in h.bot.calls if isinstance(c, SendDocument)]
    assert document.document.filename == "deconfinement-2020-report-fr-namur.pdf"  # type: ignore[union-attr]
    _pages, text, _sizes = pdf_text(document.document.data)  # type: ignore[union-attr]
    assert "12 répondants à Namur" in text and "21 répondants pour l’ensemble" in text
    await olga.send("/report fr namur")
    sent = [c for c in h.bot.calls if isinstance(c, SendDocument)]
    assert len(sent) == 2 and sent[1].document == h.bot.file_ids[0]  # the same counts
    async with h.services.sessionmaker() as session:
        await CommuneRepository(session).set(members_of()["namur"][0][0], "liege", at)
        await session.commit()
    await olga.send("/report fr 5000")
    sent = [c for c in h.bot.calls if isinstance(c, SendDocument)]
    _pages, text, _sizes = pdf_text(sent[2].document.data)  # type: ignore[union-attr]
    assert "11 répondants à Namur" in text and "21 répondants pour l’ensemble" in text


async def test_the_report_button_is_for_organisers_only(document_bot: Harness) -> None:
    h = document_bot
    dp = h.dispatcher()
    olga = h.client(user_id=1, dp=dp)
    await olga.send("/results")
    message = offer(h)
    anne = h.client(user_id=7, dp=dp)
    anne.last_update_id = 700_000
    await anne.send("/start")
    await anne.click(message, button("Rapport PDF pour le conseil"))
    assert h.bot.alerts()[-1] == "Ce bouton est réservé aux organisateurs."
    forged = ReportButton(lang="de").pack()
    message.reply_markup.inline_keyboard[0][0].callback_data = forged  # type: ignore[union-attr]
    await olga.click(message, button("Rapport PDF pour le conseil"))
    assert h.bot.alerts()[-1] == "Ce bouton n’est plus valable : écrivez /report."
    await anne.send("/report")
    assert h.bot.texts()[-1] == "Cette commande est réservée aux organisateurs."
    assert not [c for c in h.bot.calls if isinstance(c, SendDocument)]


async def test_the_report_command_says_what_it_did_not_understand(document_bot: Harness) -> None:
    h = document_bot
    olga = h.client(user_id=1)
    await olga.send("/report atlantis")
    assert "Je n’ai pas compris" in h.bot.texts()[-1]
    await olga.send("/report nl")
    [document] = [c for c in h.bot.calls if isinstance(c, SendDocument)]
    assert document.document.filename == "deconfinement-2020-report-nl.pdf"  # type: ignore[union-attr]
