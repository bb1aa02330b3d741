"""The survey dialog: one question per screen, a review screen, submission."""

from __future__ import annotations

from html import escape
from typing import Any

from aiogram.enums import ContentType
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Column, Group, Row
from aiogram_dialog.widgets.text import Format

from bot.consultation import PhaseKind, Question
from bot.context import AppContext
from bot.i18n import Translator
from bot.services import UpdateServices
from bot.survey.kinds import kind_of
from bot.survey.screen import OptionTap, SurveyData, parse_stamp
from bot.survey.service import (
    AnswerProblem,
    SurveyClosed,
    SurveyService,
    check_answer,
    first_unanswered,
    stored_answer,
    visible_questions,
)
from bot.survey.view import review_text
from bot.ui.deps import app_of, member_of, services_of, translator_of
from bot.ui.presenters import option_details, when
from bot.ui.states import MainMenu, Survey
from bot.ui.widgets import Choices, Stamped, T, TextInput, tell
from storage.repositories.members import MemberRecord
from storage.repositories.survey import StoredAnswer


def _service(manager: DialogManager) -> tuple[AppContext, SurveyService]:
    return app_of(manager), services_of(manager).survey


def _member_id(manager: DialogManager) -> int:
    member = member_of(manager)
    assert member is not None  # the access middleware lets no one else into the survey
    return member.id


def _unchanged(
    stored: StoredAnswer | None, question: Question, choices: list[str], text: str | None
) -> bool:
    """Whether storing this answer would change nothing (the order of choices aside)."""
    if stored is None:
        return False
    new = stored_answer(question, choices, text)
    return (set(stored.choices), stored.text) == (set(new.choices), new.text)


async def _guard(event: CallbackQuery | Message, manager: DialogManager) -> bool:
    """Answering is allowed only while the survey phase is open, to members who may answer."""
    app, service = _service(manager)
    _ = translator_of(manager).gettext
    if not services_of(manager).members.may_answer(member_of(manager)):
        reason = _("Ce sondage est réservé aux membres invités.")
    elif not service.is_open(app.clock()):
        reason = _("Le sondage est clos : vos réponses ne peuvent plus être modifiées.")
    else:
        return True
    await tell(event, reason)
    await manager.start(MainMenu.menu, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)
    return False


async def _closed_meanwhile(event: CallbackQuery | Message, manager: DialogManager) -> None:
    """The survey closed between the screen and the answer: nothing was stored."""
    await tell(
        event,
        translator_of(manager).gettext(
            "Le sondage vient de se clore : cette dernière réponse n’a pas pu être enregistrée. "
            "Merci pour votre participation !"
        ),
    )
    await manager.start(MainMenu.menu, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)


async def _store_screen(
    event: CallbackQuery | Message,
    manager: DialogManager,
    question: Question,
    choices: list[str],
    text: str | None,
) -> dict[str, StoredAnswer] | None:
    """Store a valid answer unless it is already stored; the member's answers after it, or
    None when the survey closed meanwhile (the member is told, back at the menu)."""
    data = SurveyData.of(manager)
    answers = data.answers
    if _unchanged(answers.get(question.id), question, choices, text):
        return answers
    app, service = _service(manager)
    try:
        answers = await service.save(
            _member_id(manager), question, choices, text, app.clock(), known=answers
        )
    except SurveyClosed:
        await _closed_meanwhile(event, manager)
        return None
    data.answers = answers
    return answers


async def on_survey_start(start_data: Any, manager: DialogManager) -> None:
    app, service = _service(manager)
    state = await service.state(_member_id(manager))
    data = SurveyData.of(manager)
    data.answers = state.answers
    pending = first_unanswered(app.consultation, state.answers)
    visible = visible_questions(app.consultation, state.answers)
    if pending is None and state.answers:
        data.reviewing = True
        await manager.switch_to(Survey.review)
        return
    data.enter(visible[pending or 0], state.answers)


def _current(manager: DialogManager) -> Question:
    app = app_of(manager)
    question = app.consultation.question(SurveyData.of(manager).question_id)
    return question or app.consultation.questions[0]


async def question_getter(
    dialog_manager: DialogManager,
    app: AppContext,
    lang: str,
    translator: Translator,
    **kwargs: Any,
) -> dict[str, Any]:
    c = app.consultation
    data = SurveyData.of(dialog_manager)
    question = _current(dialog_manager)
    kind = kind_of(question)
    answers = data.answers
    answers.setdefault(question.id, StoredAnswer(tuple(data.selected)))
    visible = [q.id for q in visible_questions(c, answers)]
    position = visible.index(question.id) + 1 if question.id in visible else 1
    # Each button says what it sets, on the screen it was drawn on (bot/survey/screen.py).
    labels = [c.text(o.label, lang) for o in question.options]
    items = data.option_items(question, labels, kind.marks, select_only=kind.answers_at_once)
    details = option_details(question, c, lang, translator)
    hint = kind.hint(question, translator, data.text)
    body = "\n\n".join(
        part
        for part in (
            f"<b>{escape(c.text(question.text, lang))}</b>",
            "\n".join(details),
            f"<i>{hint}</i>",
        )
        if part
    )
    return {
        "progress": f"{position} / {len(visible)}",
        "body": body,
        "options": items,
        "stamp": [str(data.stamp)],
        "has_options": bool(items),
        "is_text": kind.takes_text,
        "review_return": data.reviewing,
        "forward": not data.reviewing,
        "first": position == 1,
    }


def problem_text(translator: Translator, problem: AnswerProblem, question: Question) -> str:
    _ = translator.gettext
    ngettext = translator.ngettext
    if problem == AnswerProblem.TOO_FEW:
        n = question.min_choices
        return ngettext(
            "Choisissez au moins {n} réponse.", "Choisissez au moins {n} réponses.", n
        ).format(n=n)
    if problem == AnswerProblem.TOO_MANY:
        n = question.max_choices
        return ngettext(
            "Choisissez au plus {n} réponse.", "Choisissez au plus {n} réponses.", n
        ).format(n=n)
    if problem == AnswerProblem.EMPTY_TEXT:
        return _("Écrivez votre réponse dans un message avant de continuer.")
    if problem == AnswerProblem.TEXT_TOO_LONG:
        return _("Votre réponse est trop longue : {n} caractères au maximum.").format(
            n=question.max_length
        )
    return _("Cette réponse n’existe pas ou plus.")


async def _save_and_advance(event: CallbackQuery | Message, manager: DialogManager) -> None:
    app = app_of(manager)
    data = SurveyData.of(manager)
    question = _current(manager)
    choices, text = data.selected, data.text
    problem = check_answer(question, choices, text)
    if problem is not None:
        message = problem_text(translator_of(manager), problem, question)
        await tell(event, message)
        return
    answers = await _store_screen(event, manager, question, choices, text)
    if answers is None:
        return
    visible = visible_questions(app.consultation, answers)
    ids = [q.id for q in visible]
    pending = first_unanswered(app.consultation, answers)
    if data.reviewing:
        # Back to the review, unless the change revealed a question still to answer.
        if pending is None:
            await manager.switch_to(Survey.review)
        else:
            data.enter(visible[pending], answers)
        return
    after = ids.index(question.id) + 1 if question.id in ids else len(ids)
    if after < len(visible):
        data.enter(visible[after], answers)
    elif pending is not None:
        data.enter(visible[pending], answers)
    else:
        await manager.switch_to(Survey.review)


async def on_option(callback: CallbackQuery, _: Any, manager: DialogManager, item_id: str) -> None:
    if not await _guard(callback, manager):
        return
    app, service = _service(manager)
    data = SurveyData.of(manager)
    question = _current(manager)
    tap = OptionTap.parse(item_id)
    if tap is None or question.option(tap.option_id) is None:
        text = problem_text(translator_of(manager), AnswerProblem.UNKNOWN_OPTION, question)
        await callback.answer(text)
        return
    if not data.as_seen(tap):
        # A repeated or late tap: the screen it was on is gone, or the option changed since.
        # Nothing changes; aiogram-dialog draws the current screen, then answers the query.
        return
    kind = kind_of(question)
    picked = kind.pick(question, data.selected, tap.option_id, tap.chosen)
    if isinstance(picked, AnswerProblem):
        await callback.answer(
            problem_text(translator_of(manager), picked, question), show_alert=True
        )
        return
    if picked == data.selected and not kind.answers_at_once:
        return  # already as the tap sets it
    data.pick(tap.option_id, picked)
    if kind.answers_at_once:
        await _save_and_advance(callback, manager)
        return
    # Every pick is stored at once, so no way out of the screen loses it: a valid selection
    # becomes the answer, an invalid one (too few) leaves the question unanswered.
    known = data.answers
    try:
        if check_answer(question, picked, None) is None:
            answers = await service.save(
                _member_id(manager), question, picked, None, app.clock(), known=known
            )
        else:
            answers = await service.clear(_member_id(manager), question, app.clock(), known=known)
    except SurveyClosed:
        await _closed_meanwhile(callback, manager)
        return
    data.answers = answers


def _drawn_now(manager: DialogManager, item_id: str) -> bool:
    """A navigation button of the question's current visit; a repeated ▶️ must not skip the
    next question (the screen is drawn again instead)."""
    stamp = parse_stamp(item_id)
    return stamp is not None and SurveyData.of(manager).drawn_now(stamp)


async def on_next(callback: CallbackQuery, _: Any, manager: DialogManager, item_id: str) -> None:
    if await _guard(callback, manager) and _drawn_now(manager, item_id):
        await _save_and_advance(callback, manager)


async def on_back(callback: CallbackQuery, _: Any, manager: DialogManager, item_id: str) -> None:
    if not await _guard(callback, manager) or not _drawn_now(manager, item_id):
        return
    app = app_of(manager)
    data = SurveyData.of(manager)
    question = _current(manager)
    choices, text = data.selected, data.text
    # Leaving a screen saves what it holds, when it is a valid answer.
    if check_answer(question, choices, text) is None:
        stored = await _store_screen(callback, manager, question, choices, text)
        if stored is None:
            return
        answers = stored
    else:
        answers = data.answers
    if data.reviewing and first_unanswered(app.consultation, answers) is None:
        await manager.switch_to(Survey.review)
        return
    ids = [q.id for q in visible_questions(app.consultation, answers)]
    position = ids.index(question.id) if question.id in ids else 0
    if position == 0:
        await manager.done()
        return
    target = app.consultation.question(ids[position - 1])
    assert target is not None
    data.enter(target, answers)


async def on_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    if not await _guard(message, manager):
        return
    question = _current(manager)
    if not kind_of(question).takes_text:
        await on_other_input(message, _, manager)
        return
    SurveyData.of(manager).type_text((message.text or "").strip())
    await _save_and_advance(message, manager)


async def on_other_input(message: Message, _: MessageInput, manager: DialogManager) -> None:
    translator = translator_of(manager)
    question = _current(manager)
    if kind_of(question).takes_text and manager.current_context().state == Survey.question:
        text = translator.gettext("Envoyez votre réponse sous forme de texte, s’il vous plaît.")
    else:
        text = translator.gettext("Utilisez les boutons sous la question, s’il vous plaît.")
    await message.answer(text)
    manager.show_mode = ShowMode.SEND


async def review_getter(
    dialog_manager: DialogManager,
    app: AppContext,
    lang: str,
    translator: Translator,
    services: UpdateServices,
    member: MemberRecord | None,
    **kwargs: Any,
) -> dict[str, Any]:
    c = app.consultation
    _ = translator.gettext
    assert member is not None  # as in _member_id
    state = await services.survey.state(member.id)
    entries = []
    buttons = []
    for i, q in enumerate(visible_questions(c, state.answers), start=1):
        stored = state.answers.get(q.id)
        if stored is None:
            answer = _("(pas encore de réponse)")
        else:
            answer = kind_of(q).shown_answer(q, stored.choices, stored.text, c, lang)
        entries.append((f"<b>{i}. {escape(c.text(q.text, lang))}</b>", answer))
        buttons.append((q.id, f"✏️ {i}"))
    survey = c.phase(PhaseKind.SURVEY)
    end = when(survey.ends, c, lang, time=True) if survey else ""
    return {
        "answers": review_text(entries),
        "questions": buttons,
        "draft": state.status != "submitted",
        "submitted": state.status == "submitted",
        "end": end,
    }


async def on_edit(
    callback: CallbackQuery, _: Any, manager: DialogManager, question_id: str
) -> None:
    if not await _guard(callback, manager):
        return
    app, service = _service(manager)
    data = SurveyData.of(manager)
    state = await service.state(_member_id(manager))
    data.answers = state.answers
    visible = {q.id: q for q in visible_questions(app.consultation, state.answers)}
    if question_id not in visible:
        await callback.answer(translator_of(manager).gettext("Cette question n’est plus posée."))
        return
    data.reviewing = True
    data.enter(visible[question_id], state.answers)
    await manager.switch_to(Survey.question)


async def on_submit(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    if not await _guard(callback, manager):
        return
    app, service = _service(manager)
    try:
        submitted = await service.submit(_member_id(manager), app.clock())
    except SurveyClosed:
        await _closed_meanwhile(callback, manager)
        return
    if submitted:
        await manager.switch_to(Survey.done)
        return
    data = SurveyData.of(manager)
    state = await service.state(_member_id(manager))
    data.answers = state.answers
    pending = first_unanswered(app.consultation, state.answers)
    visible = visible_questions(app.consultation, state.answers)
    await callback.answer(
        translator_of(manager).gettext("Il reste une question sans réponse."), show_alert=True
    )
    data.enter(visible[pending or 0], state.answers)
    await manager.switch_to(Survey.question)


async def to_menu(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    await manager.start(MainMenu.menu, mode=StartMode.RESET_STACK)


def survey_dialog() -> Dialog:
    """A fresh dialog: a router can belong to one dispatcher only."""
    return Dialog(
        Window(
            T("Question {progress}"),
            Format("\n{body}"),
            Column(
                Choices("o", "options", on_option),
                when="has_options",
            ),
            Row(
                Stamped(T("◀️ Retour"), "back", on_back),
                Stamped(T("Suivant ▶️"), "next", on_next, when="forward"),
                Stamped(T("Valider ✅"), "ok", on_next, when="review_return"),
            ),
            *TextInput(on_text, on_other_input),
            state=Survey.question,
            getter=question_getter,
        ),
        Window(
            T("<b>Vos réponses</b>"),
            Format("\n{answers}\n"),
            T("Touchez ✏️ et le numéro d’une question pour changer sa réponse.", when="draft"),
            T(
                "Vos réponses sont envoyées. Vous pouvez encore les changer jusqu’au {end}.",
                when="submitted",
            ),
            Group(
                Choices("e", "questions", on_edit),
                width=4,
            ),
            Button(T("📨 Envoyer mes réponses"), id="submit", on_click=on_submit, when="draft"),
            Button(T("🏠 Menu"), id="menu", on_click=to_menu),
            MessageInput(on_other_input, content_types=[ContentType.ANY]),
            state=Survey.review,
            getter=review_getter,
        ),
        Window(
            T("🙏 Merci ! Vos réponses sont enregistrées."),
            T("Vous pouvez les changer jusqu’au {end} : menu, puis « Revoir mes réponses »."),
            Button(T("🏠 Menu"), id="menu", on_click=to_menu),
            MessageInput(on_other_input, content_types=[ContentType.ANY]),
            state=Survey.done,
            getter=review_getter,
        ),
        on_start=on_survey_start,
    )
