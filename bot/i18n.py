"""Interface strings (gettext catalogs, French source) and the member's language."""

from __future__ import annotations

import gettext as gettext_module
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_percent

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
SOURCE_LANGUAGE = "fr"
# Languages the interface is translated into; a consultation may use a subset.
INTERFACE_LANGUAGES = ("fr", "nl", "en")
LANGUAGE_NAMES = {"fr": "Français", "nl": "Nederlands", "en": "English"}


def _load(po_path: Path) -> gettext_module.GNUTranslations:
    # Compile the .po in memory: no build step, and a fresh checkout is translated at once.
    with po_path.open("rb") as fp:
        catalog = read_po(fp, locale=po_path.parent.parent.name)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext_module.GNUTranslations(buffer)


class Translator:
    """Looks strings up in the member's language, held in a context variable per update."""

    def __init__(self, path: Path = LOCALES_DIR, default: str = SOURCE_LANGUAGE) -> None:
        self.default = default
        self._locale: ContextVar[str] = ContextVar("consultbot_locale", default=default)
        self.catalogs: dict[str, gettext_module.GNUTranslations] = {}
        for lang in INTERFACE_LANGUAGES:
            po = path / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
            if po.exists():
                self.catalogs[lang] = _load(po)

    @property
    def locale(self) -> str:
        return self._locale.get()

    @contextmanager
    def use(self, locale: str) -> Iterator[None]:
        token = self._locale.set(locale)
        try:
            yield
        finally:
            self._locale.reset(token)

    def gettext(self, message: str, locale: str | None = None) -> str:
        catalog = self.catalogs.get(locale or self.locale)
        return catalog.gettext(message) if catalog else message

    def ngettext(self, singular: str, plural: str, n: int, locale: str | None = None) -> str:
        catalog = self.catalogs.get(locale or self.locale)
        if catalog is None:
            return singular if n == 1 else plural
        return catalog.ngettext(singular, plural, n)


def pick_language(candidates: list[str | None], available: list[str]) -> str | None:
    """The first candidate (e.g. Telegram's 'nl-BE') whose base language is available."""
    for candidate in candidates:
        if candidate:
            base = candidate.lower().split("-")[0].split("_")[0]
            if base in available:
                return base
    return None


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated later, where the language is known."""
    return message


# Role names as members read them (msgids: translate with the reader's catalog).
ROLE_NAMES = {
    "ambassador": N_("ambassadeur"),
    "official": N_("élu ou responsable local"),
    "moderator": N_("modérateur"),
}


def role_name(role: str) -> str:
    """The msgid naming a role (an unknown role keeps its id)."""
    return ROLE_NAMES.get(role, role)


def language_name(code: str, lang: str) -> str:
    """A language's name in the reader's language ("néerlandais", "Dutch"), from Babel's CLDR."""
    try:
        return Locale.parse(lang).languages.get(code, code)
    except (ValueError, UnknownLocaleError):
        return code


def percent(share: float, lang: str) -> str:
    """A share (0.7) as the reader writes it: "70 %" in French, "70%" in Dutch and English."""
    try:
        return format_percent(share, locale=lang)
    except (ValueError, UnknownLocaleError):
        return f"{round(share * 100)}%"


# French contracts "à" with a name's own article: "au Roeulx", "aux Bons Villers"
# ("à La Louvière", "à L’Escaut" stay).
_FRENCH_CONTRACTIONS = (("Les ", "aux ", "Aux "), ("Le ", "au ", "Au "))


def at_place(text: str, name: str, lang: str) -> str:
    """`text` with "à {name}" as French writes it when the name starts with Le or Les:
    "réponses à Le Roeulx" → "réponses au Roeulx", "À Les Bons Villers," → "Aux Bons Villers,".
    Only the given name is touched; other languages are returned as they are."""
    if lang != "fr":
        return text
    for article, low, high in _FRENCH_CONTRACTIONS:
        if name.startswith(article):
            rest = name[len(article) :]
            return text.replace(f"à {name}", low + rest).replace(f"À {name}", high + rest)
    return text


# French sets a no-break space before ? ! : ; and », and after «: a "?" never starts a line.
_FRENCH_SPACE_BEFORE = re.compile(r" (?=[?!:;»])")
_FRENCH_SPACE_AFTER = re.compile(r"(?<=«) ")
NO_BREAK_SPACE = "\u00a0"


def typeset(text: str, lang: str) -> str:
    """The spaces a language's typography keeps on one line with their neighbour: in French
    the space before ? ! : ; » and after « becomes a no-break space (matplotlib's and
    textwrap's line breaks, and Telegram's, then never separate them). Only spaces already
    written are changed ("14:00", "https://" stay as they are)."""
    if lang != "fr":
        return text
    text = _FRENCH_SPACE_BEFORE.sub(NO_BREAK_SPACE, text)
    return _FRENCH_SPACE_AFTER.sub(NO_BREAK_SPACE, text)
