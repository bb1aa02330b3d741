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
from bot.members.service import MemberService
from bot.survey.service import (
    AnswerProblem,
    SurveyClosed,
    SurveyService,
    check_answer,
    first_unanswered,
    visible_questions,
)
from bot.ui.presenters import option_details, when
from bot.ui.states import MainMenu, Survey
from bot.ui.widgets import Choices, T, tell
from storage.repositories.survey import StoredAnswer


def _service(manager: DialogManager) -> tuple[AppContext, SurveyService]:
    app: AppContext = manager.middleware_data["app"]
    return app, SurveyService(manager.middleware_data["session"], app.consultation, app.clock)


def _member_id(manager: DialogManager) -> int:
    return manager.middleware_data["member"].id


def _answers(manager: DialogManager) -> dict[str, StoredAnswer]:
    """The member's stored answers as the last write left them (a copy kept in the dialog)."""
    raw: dict[str, list[Any]] = manager.dialog_data.get("ans", {})
    return {qid: StoredAnswer(tuple(choices), text) for qid, (choices, text) in raw.items()}


def _unchanged(
    stored: StoredAnswer | None, question: Question, choices: list[str], text: str | None
) -> bool:
    """Whether storing this answer would change nothing (the order of choices aside)."""
    if stored is None:
        return False
    if question.kind == "text":
        return stored.text == text
    return set(stored.choices) == set(choices)


def _keep(manager: DialogManager, answers: dict[str, StoredAnswer]) -> None:
    manager.dialog_data["ans"] = {q: [list(a.choices), a.text] for q, a in answers.items()}


async def _guard(event: CallbackQuery | Message, manager: DialogManager) -> bool:
    """Answering is allowed only while the survey phase is open, to members who may answer."""
    app, service = _service(manager)
    _ = app.translator.gettext
    member = manager.middleware_data.get("member")
    if not MemberService(manager.middleware_data["session"], app).may_answer(member):
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
    app: AppContext = manager.middleware_data["app"]
    await tell(
        event,
        app.translator.gettext(
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
    answers = _answers(manager)
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
    _keep(manager, answers)
    return answers


def _enter(manager: DialogManager, question: Question, answers: dict[str, StoredAnswer]) -> None:
    stored = answers.get(question.id)
    manager.dialog_data["q"] = question.id
    manager.dialog_data["sel"] = list(stored.choices) if stored else []
    manager.dialog_data["txt"] = stored.text if stored else None


async def on_survey_start(start_data: Any, manager: DialogManager) -> None:
    app, service = _service(manager)
    state = await service.state(_member_id(manager))
    _keep(manager, state.answers)
    pending = first_unanswered(app.consultation, state.answers)
    visible = visible_questions(app.consultation, state.answers)
    if pending is None and state.answers:
        manager.dialog_data["rv"] = True
        await manager.switch_to(Survey.review)
        return
    _enter(manager, visible[pending or 0], state.answers)


def _current(manager: DialogManager) -> Question:
    app: AppContext = manager.middleware_data["app"]
    question = app.consultation.question(manager.dialog_data.get("q", ""))
    return question or app.consultation.questions[0]


async def question_getter(
    dialog_manager: DialogManager, app: AppContext, lang: str, **kwargs: Any
) -> dict[str, Any]:
    c = app.consultation
    _ = app.translator.gettext
    ngettext = app.translator.ngettext
    question = _current(dialog_manager)
    answers = _answers(dialog_manager)
    answers.setdefault(question.id, StoredAnswer(tuple(dialog_manager.dialog_data.get("sel", []))))
    visible = [q.id for q in visible_questions(c, answers)]
    position = visible.index(question.id) + 1 if question.id in visible else 1
    selected = set(dialog_manager.dialog_data.get("sel", []))
    on, off = ("🔘", "⚪") if question.kind == "single" else ("✅", "▫️")
    # The question travels with the option: after a crash the screen may be one step ahead
    # of the stored dialog position, and the tap must still mean what the member saw.
    items = [
        (f"{question.id}.{o.id}", f"{on if o.id in selected else off} {c.text(o.label, lang)}")
        for o in question.options
    ]
    details = option_details(question, c, lang, app.translator)
    if question.kind == "text":
        hint = _("Écrivez votre réponse dans un message.")
        draft = dialog_manager.dialog_data.get("txt")
        if draft:
            hint += "\n" + _("Votre réponse : {answer}").format(answer=escape(draft))
    elif question.kind == "single":
        hint = _("Touchez votre réponse.")
    else:
        hint = _("Touchez une ou plusieurs réponses, puis « Suivant ».")
        if question.min_choices > 1:
            n = question.min_choices
            hint += " " + ngettext("Au moins {n} réponse.", "Au moins {n} réponses.", n).format(n=n)
        if question.max_choices < len(question.options):
            n = question.max_choices
            hint += " " + ngettext("Au plus {n} réponse.", "Au plus {n} réponses.", n).format(n=n)
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
        "has_options": bool(items),
        "is_text": question.kind == "text",
        "review_return": bool(dialog_manager.dialog_data.get("rv")),
        "forward": not dialog_manager.dialog_data.get("rv"),
        "first": position == 1,
    }


def problem_text(app: AppContext, problem: AnswerProblem, question: Question) -> str:
    _ = app.translator.gettext
    ngettext = app.translator.ngettext
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
    app: AppContext = manager.middleware_data["app"]
    question = _current(manager)
    choices = list(manager.dialog_data.get("sel", []))
    text = manager.dialog_data.get("txt")
    problem = check_answer(question, choices, text)
    if problem is not None:
        message = problem_text(app, problem, question)
        await tell(event, message)
        return
    answers = await _store_screen(event, manager, question, choices, text)
    if answers is None:
        return
    visible = visible_questions(app.consultation, answers)
    ids = [q.id for q in visible]
    pending = first_unanswered(app.consultation, answers)
    if manager.dialog_data.get("rv"):
        # Back to the review, unless the change revealed a question still to answer.
        if pending is None:
            await manager.switch_to(Survey.review)
        else:
            _enter(manager, visible[pending], answers)
        return
    after = ids.index(question.id) + 1 if question.id in ids else len(ids)
    if after < len(visible):
        _enter(manager, visible[after], answers)
    elif pending is not None:
        _enter(manager, visible[pending], answers)
    else:
        await manager.switch_to(Survey.review)


async def on_option(callback: CallbackQuery, _: Any, manager: DialogManager, item_id: str) -> None:
    if not await _guard(callback, manager):
        return
    app, service = _service(manager)
    question_id, _dot, option_id = item_id.partition(".")
    question = _current(manager)
    if question_id != question.id:
        state = await service.state(_member_id(manager))
        _keep(manager, state.answers)
        shown = next(
            (q for q in visible_questions(app.consultation, state.answers) if q.id == question_id),
            None,
        )
        if shown is None:
            await callback.answer(problem_text(app, AnswerProblem.UNKNOWN_OPTION, question))
            return
        _enter(manager, shown, state.answers)
        question = shown
    if question.option(option_id) is None:
        await callback.answer(problem_text(app, AnswerProblem.UNKNOWN_OPTION, question))
        return
    selected: list[str] = list(manager.dialog_data.get("sel", []))
    if question.kind == "single":
        manager.dialog_data["sel"] = [option_id]
        await _save_and_advance(callback, manager)
        return
    if option_id in selected:
        selected.remove(option_id)
    elif len(selected) >= question.max_choices:
        await callback.answer(problem_text(app, AnswerProblem.TOO_MANY, question), show_alert=True)
        return
    else:
        selected.append(option_id)
    # Keep the file's order so stored answers and the review read naturally.
    order = [o.id for o in question.options]
    manager.dialog_data["sel"] = selected = sorted(selected, key=order.index)
    # Every pick is stored at once, so no way out of the screen loses it: a valid selection
    # becomes the answer, an invalid one (too few) leaves the question unanswered.
    known = _answers(manager)
    try:
        if check_answer(question, selected, None) is None:
            answers = await service.save(
                _member_id(manager), question, selected, None, app.clock(), known=known
            )
        else:
            answers = await service.clear(_member_id(manager), question, app.clock(), known=known)
    except SurveyClosed:
        await _closed_meanwhile(callback, manager)
        return
    _keep(manager, answers)


async def on_next(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    if await _guard(callback, manager):
        await _save_and_advance(callback, manager)


async def on_back(callback: CallbackQuery, _: Button, manager: DialogManager) -> None:
    if not await _guard(callback, manager):
        return
    app: AppContext = manager.middleware_data["app"]
    question = _current(manager)
    choices = list(manager.dialog_data.get("sel", []))
    text = manager.dialog_data.get("txt")
    # Leaving a screen saves what it holds, when it is a valid answer.
    if check_answer(question, choices, text) is None:
        stored = await _store_screen(callback, manager, question, choices, text)
        if stored is None:
            return
        answers = stored
    else:
        answers = _answers(manager)
    if manager.dialog_data.get("rv") and first_unanswered(app.consultation, answers) is None:
        await manager.switch_to(Survey.review)
        return
    ids = [q.id for q in visible_questions(app.consultation, answers)]
    position = ids.index(question.id) if question.id in ids else 0
    if position == 0:
        await manager.done()
        return
    target = app.consultation.question(ids[position - 1])
    assert target is not None
    _enter(manager, target, answers)


async def on_text(message: Message, _: MessageInput, manager: DialogManager) -> None:
    if not await _guard(message, manager):
        return
    question = _current(manager)
    if question.kind != "text":
        await on_other_input(message, _, manager)
        return
    manager.dialog_data["txt"] = (message.text or "").strip()
    await _save_and_advance(message, manager)


async def on_other_input(message: Message, _: MessageInput, manager: DialogManager) -> None:
    app: AppContext = manager.middleware_data["app"]
    question = _current(manager)
    if question.kind == "text" and manager.current_context().state == Survey.question:
        text = app.translator.gettext("Envoyez votre réponse sous forme de texte, s’il vous plaît.")
    else:
        text = app.translator.gettext("Utilisez les boutons sous la question, s’il vous plaît.")
    await message.answer(text)
    manager.show_mode = ShowMode.SEND


async def review_getter(
    dialog_manager: DialogManager, app: AppContext, lang: str, **kwargs: Any
) -> dict[str, Any]:
    c = app.consultation
    _ = app.translator.gettext
    _app, service = _service(dialog_manager)
    state = await service.state(_member_id(dialog_manager))
    lines = []
    buttons = []
    for i, q in enumerate(visible_questions(c, state.answers), start=1):
        stored = state.answers.get(q.id)
        if stored is None:
            answer = _("(pas encore de réponse)")
        elif q.kind == "text":
            answer = escape(stored.text or "—")
        else:
            labels = [c.text(o.label, lang) for o in q.options if o.id in stored.choices]
            answer = escape(", ".join(labels)) if labels else "—"
        lines.append(f"<b>{i}. {escape(c.text(q.text, lang))}</b>\n→ {answer}")
        buttons.append((q.id, f"✏️ {i}"))
    survey = c.phase(PhaseKind.SURVEY)
    end = when(survey.ends, c, lang, time=True) if survey else ""
    return {
        "answers": "\n\n".join(lines),
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
    state = await service.state(_member_id(manager))
    _keep(manager, state.answers)
    visible = {q.id: q for q in visible_questions(app.consultation, state.answers)}
    if question_id not in visible:
        await callback.answer(app.translator.gettext("Cette question n’est plus posée."))
        return
    manager.dialog_data["rv"] = True
    _enter(manager, visible[question_id], state.answers)
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
    state = await service.state(_member_id(manager))
    _keep(manager, state.answers)
    pending = first_unanswered(app.consultation, state.answers)
    visible = visible_questions(app.consultation, state.answers)
    await callback.answer(
        app.translator.gettext("Il reste une question sans réponse."), show_alert=True
    )
    _enter(manager, visible[pending or 0], state.answers)
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
                Button(T("◀️ Retour"), id="back", on_click=on_back),
                Button(T("Suivant ▶️"), id="next", on_click=on_next, when="forward"),
                Button(T("Valider ✅"), id="ok", on_click=on_next, when="review_return"),
            ),
            MessageInput(on_text, content_types=[ContentType.TEXT]),
            MessageInput(on_other_input, content_types=[ContentType.ANY]),
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
