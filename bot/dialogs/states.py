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
