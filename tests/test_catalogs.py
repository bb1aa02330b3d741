"""The catalogs hold every string the code passes to the translator, in every language.

The code is read with `ast`: every call of `_`, `T`, `N_`, `gettext` or `ngettext` (also as
`x.gettext(...)`) with a literal msgid. A msgid missing from nl or en, left untranslated or
fuzzy, or whose translation lost or gained a `{placeholder}` or an HTML tag, fails here.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot.i18n import INTERFACE_LANGUAGES, LOCALES_DIR, SOURCE_LANGUAGE
from tests.support import REPO

SINGULAR = {"_", "T", "N_", "gettext"}
PLURAL = {"ngettext"}
TRANSLATED = [lang for lang in INTERFACE_LANGUAGES if lang != SOURCE_LANGUAGE]
PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")
TAG = re.compile(r"</?[a-z]+")


@dataclass(frozen=True)
class Use:
    msgid: str | tuple[str, str]
    where: str


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def code_uses() -> list[Use]:
    uses = []
    for path in sorted((REPO / "bot").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = _name(node.func)
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            if name in SINGULAR and (msgid := _literal(node.args[0])) is not None:
                uses.append(Use(msgid, where))
            elif name in PLURAL and len(node.args) >= 2:
                one, many = _literal(node.args[0]), _literal(node.args[1])
                if one is not None and many is not None:
                    uses.append(Use((one, many), where))
    return uses


def translator_aliases() -> list[str]:
    """Assignments that give the translator (or one of its methods) another name than `_`
    or `ngettext`: strings passed to such a name escape `make messages`."""
    found = []
    for path in sorted((REPO / "bot").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Assign) or len(node.targets) != 1:
                continue
            target, value = node.targets[0], node.value
            if not isinstance(target, ast.Name) or not isinstance(value, ast.Attribute):
                continue
            if value.attr in ("gettext", "ngettext", "translator"):
                allowed = {"gettext": "_", "ngettext": "ngettext", "translator": "translator"}
                if target.id != allowed[value.attr]:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {target.id}")
    return found


def load(lang: str) -> Catalog:
    with (LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        return read_po(fp, locale=lang)


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def tags(text: str) -> list[str]:
    return sorted(TAG.findall(text))


def test_the_code_uses_one_name_for_the_translator() -> None:
    assert translator_aliases() == []


def test_the_scan_sees_the_strings_of_every_layer() -> None:
    """The scan itself must find strings of dialogs (T), handlers, modules and plurals."""
    msgids = {u.msgid for u in code_uses()}
    assert "📝 Répondre au sondage" in msgids  # T(...) in a dialog
    assert "Touchez une ou plusieurs réponses, puis « Suivant »." in msgids  # a getter
    assert ("{n} répondant", "{n} répondants") in msgids  # ngettext in bot/results/tally.py
    assert len(msgids) > 150


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_msgid_of_the_code_is_translated(lang: str) -> None:
    catalog = load(lang)
    problems = []
    for use in code_uses():
        key = use.msgid[0] if isinstance(use.msgid, tuple) else use.msgid
        message = catalog.get(key)
        if message is None:
            problems.append(f"{use.where}: missing in {lang}: {key!r}")
            continue
        sources = list(use.msgid) if isinstance(use.msgid, tuple) else [use.msgid]
        translations = (
            list(message.string) if isinstance(message.string, tuple) else [message.string]
        )
        if message.fuzzy or not all(t.strip() for t in translations):
            problems.append(f"{use.where}: untranslated or fuzzy in {lang}: {key!r}")
            continue
        if isinstance(use.msgid, tuple) != isinstance(message.id, tuple):
            problems.append(f"{use.where}: plural form differs in {lang}: {key!r}")
            continue
        for i, text in enumerate(translations):
            source = sources[min(i, len(sources) - 1)]
            if placeholders(text) != placeholders(source):
                problems.append(f"{use.where}: placeholders differ in {lang}: {text!r}")
            if tags(text) != tags(source):
                problems.append(f"{use.where}: HTML tags differ in {lang}: {text!r}")
    assert not problems, "\n".join(problems)


def test_the_catalogs_carry_no_entry_the_code_no_longer_uses() -> None:
    used = {u.msgid[0] if isinstance(u.msgid, tuple) else u.msgid for u in code_uses()}
    for lang in ("fr", *TRANSLATED):
        catalog = load(lang)
        unused = [
            m.id
            for m in catalog
            if m.id and (m.id[0] if isinstance(m.id, tuple) else m.id) not in used
        ]
        assert not unused, f"{lang}: entries no code uses (run `make messages`): {unused}"
        assert not catalog.obsolete, f"{lang}: obsolete entries kept: {list(catalog.obsolete)}"


def test_the_catalogs_carry_no_stale_fuzzy_entry() -> None:
    for lang in TRANSLATED:
        fuzzy = [m.id for m in load(lang) if m.id and m.fuzzy]
        assert not fuzzy, (lang, fuzzy)


def test_the_scan_catches_an_alias_and_a_missing_string(tmp_path: Path) -> None:
    """The checks above can fail: an alias is spotted, a new msgid is not in the catalogs."""
    source = "tr = app.translator.gettext\nx = tr('Bonjour')\ny = _('Une phrase neuve 123')\n"
    tree = ast.parse(source)
    assigns = [n for n in ast.walk(tree) if isinstance(n, ast.Assign)]
    assert isinstance(assigns[0].value, ast.Attribute) and assigns[0].value.attr == "gettext"
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n.func) in SINGULAR)
    assert _literal(call.args[0]) == "Une phrase neuve 123"
    assert load("nl").get("Une phrase neuve 123") is None
