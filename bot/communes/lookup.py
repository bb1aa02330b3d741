"""Finding a commune from what a member types: a postal code, or the first letters of its name
in any language ("brux" finds Bruxelles/Brussel, "luik" finds Liège), accents and case aside."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from bot.communes.model import Commune

# At most this many buttons: more means the member should type a few more letters.
SHOWN = 6
_POSTAL_IN_TEXT = re.compile(r"\d{4,}")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    """Lowercase ASCII words: "Saint-Josse-ten-Noode" and "saint josse" compare alike."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_ALNUM.sub(" ", plain.casefold()).strip()


@dataclass(frozen=True)
class Matches:
    communes: list[Commune]
    more: bool  # others matched too, beyond the SHOWN first


class CommuneDirectory:
    """The consultation's communes, indexed once (bot/context.py keeps one per consultation)."""

    def __init__(self, communes: Sequence[Commune], source_language: str) -> None:
        self.communes = communes
        self.source_language = source_language
        self._by_id = {c.id: c for c in communes}
        self._names = [(c, {normalise(name) for name in c.name.values()}) for c in communes]
        self._by_code: dict[str, list[Commune]] = {}
        for commune in communes:
            for code in commune.postal_codes:
                self._by_code.setdefault(normalise(code).replace(" ", ""), []).append(commune)

    def __bool__(self) -> bool:
        return bool(self.communes)

    def get(self, commune_id: str | None) -> Commune | None:
        return self._by_id.get(commune_id) if commune_id else None

    def label(self, commune: Commune, lang: str) -> str:
        return commune.label(lang, self.source_language)

    def name_of(self, commune_id: str | None, lang: str) -> str | None:
        """The commune's name in `lang`; an id the file no longer has is shown as it is."""
        if commune_id is None:
            return None
        commune = self.get(commune_id)
        return self.label(commune, lang) if commune else commune_id

    def search(self, query: str, limit: int = SHOWN) -> Matches:
        found = self._ranked(query)
        return Matches(found[:limit], len(found) > limit)

    def _ranked(self, query: str) -> list[Commune]:
        code = _POSTAL_IN_TEXT.search(query)
        wanted = normalise(query)
        if code is not None or wanted.replace(" ", "").isdigit():
            return self._by_postal_code(code.group() if code else wanted.replace(" ", ""))
        if not wanted:
            return []
        ranked: list[tuple[int, str, Commune]] = []
        for commune, names in self._names:
            rank = min((_rank(name, wanted) for name in names), default=3)
            if rank < 3:
                ranked.append((rank, normalise(self.label(commune, self.source_language)), commune))
        ranked.sort(key=lambda r: (r[0], r[1]))
        return [commune for _rank_, _name, commune in ranked]

    def _by_postal_code(self, digits: str) -> list[Commune]:
        exact = self._by_code.get(digits, [])
        if exact or len(digits) >= 4:
            return _distinct(exact)
        # A code begun: the communes of the codes that start so, lowest code first.
        found: list[Commune] = []
        for code in sorted(c for c in self._by_code if c.startswith(digits)):
            found.extend(self._by_code[code])
        return _distinct(found)


def _distinct(communes: list[Commune]) -> list[Commune]:
    """In order, each once (one commune has several codes; models of lists are unhashable)."""
    return list({c.id: c for c in reversed(communes)}.values())[::-1]


def _rank(name: str, wanted: str) -> int:
    """0: the name itself; 1: its beginning; 2: the beginning of one of its words; 3: no."""
    if name == wanted:
        return 0
    if name.startswith(wanted):
        return 1
    if f" {wanted}" in f" {name}":
        return 2
    return 3
