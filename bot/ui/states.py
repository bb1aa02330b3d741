"""One StatesGroup per dialog."""

from aiogram.fsm.state import State, StatesGroup


class MainMenu(StatesGroup):
    menu = State()


class LanguagePick(StatesGroup):
    choose = State()


class Survey(StatesGroup):
    question = State()
    review = State()
    done = State()


class Announce(StatesGroup):
    audience = State()
    text = State()
    confirm = State()


class Ideas(StatesGroup):
    projects = State()
    project = State()
    idea = State()
    comment = State()
    reply_pick = State()
    report_pick = State()


class SubmitIdea(StatesGroup):
    project = State()
    title = State()
    text = State()
    preview = State()


class MyIdeas(StatesGroup):
    ideas = State()
    detail = State()


class CommunePick(StatesGroup):
    ask = State()
    pick = State()


class CommentaryEdit(StatesGroup):
    text = State()
