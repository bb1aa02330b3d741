"""What the ideas dialog keeps between its screens and reads at several: the idea on
screen, its page of comments, whether the phase still allows taking part."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram.types import CallbackQuery, Message
from aiogram_dialog import DialogManager

from bot.i18n import Translator
from bot.ideas.cards import comment_text_html
from bot.text_budget import clip_html, pages
from bot.ui.deps import lang_of, member_of, services_of, translator_of
from bot.ui.dialog_data import DialogRecord, Entry, StartRecord
from bot.ui.widgets import tell
from storage.models import Comment, Idea

PAGE = 5
# The idea screen: the idea itself is cut to leave this much for a page of comments, and a
# page holds what fits in it (at most PAGE comments, each cut to COMMENT_SHOWN).
IDEA_TEXT_SHOWN = 1800
COMMENTS_BUDGET = 1800
COMMENT_SHOWN = 700


class BrowseData(DialogRecord):
    """What the ideas dialog keeps between its screens."""

    project = Entry[str | None]("project", None)  # the project listed; None: opened on an idea
    page = Entry[int]("page", 0)  # of its ideas
    sort = Entry[str]("sort", "new")  # "new" | "top" (most supported first)
    mine = Entry[bool]("mine", False)  # only the ideas from the member's commune
    idea = Entry[int]("idea", 0)  # the idea on screen
    comments_page = Entry[int]("cpage", 0)  # of its comments
    parent = Entry[int | None]("parent", None)  # the comment being replied to, if any
    parent_name = Entry[str | None]("parent_name", None)  # its author


@dataclass(frozen=True)
class IdeasStart(StartRecord):
    """Start data: open the dialog on one idea (a shared link, a member's own idea)."""

    idea: int | None = None


async def closed(event: CallbackQuery | Message, manager: DialogManager) -> bool:
    """True (after telling the member) when the ideas phase no longer allows this."""
    if services_of(manager).ideas.is_open():
        return False
    text = translator_of(manager).gettext(
        "La phase des idées est close : les idées restent lisibles, mais on ne peut plus "
        "en proposer, les soutenir ni les commenter."
    )
    await tell(event, text)
    return True


def visible(idea: Idea | None, member_id: int | None) -> bool:
    return idea is not None and (idea.status == "approved" or idea.author_id == member_id)


async def current_idea(manager: DialogManager) -> Idea | None:
    idea = await services_of(manager).ideas.repo.get(BrowseData.of(manager).idea)
    member = member_of(manager)
    return idea if visible(idea, member.id if member else None) else None


def _comment_line(translator: Translator, comment: Comment, number: int, lang: str) -> str:
    indent = "    ↩️ " if comment.parent_id else ""
    name = clip_html(comment.author_name or "—", 40)
    text = comment_text_html(translator, comment, lang, COMMENT_SHOWN)
    line = translator.gettext("{number}. <b>{name}</b> : {text}", locale=lang)
    return indent + line.format(number=number, name=name, text=text)


async def page_comments(
    manager: DialogManager,
) -> tuple[list[tuple[int, Comment, str]], int, int, int]:
    """The current page's (number, comment, line), the page, the page count and the total:
    pages hold what fits in COMMENTS_BUDGET, so long comments make shorter pages."""
    translator, lang = translator_of(manager), lang_of(manager)
    data = BrowseData.of(manager)
    comments = await services_of(manager).ideas.repo.threads(data.idea)
    lines = [_comment_line(translator, c, n, lang) for n, c in enumerate(comments, start=1)]
    ranges = pages([len(line) + 1 for line in lines], COMMENTS_BUDGET, PAGE)
    page = min(data.comments_page, len(ranges) - 1)
    start, end = ranges[page]
    shown = [(n + 1, comments[n], lines[n]) for n in range(start, end)]
    return shown, page, len(ranges), len(comments)
