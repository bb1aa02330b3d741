"""A commune of the consultation file, and the checks its `communes:` section gets.

The section is a list, or `{file: communes-be.yaml}`: a list kept in a file of its own
(relative to the consultation file), such as the generated communes of Belgium."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field, field_validator

POSTAL_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z -]{1,9}$")
# A commune's name is a button label: the same limit as options' labels.
MAX_NAME_CHARS = 40

Loc = tuple[str | int, ...]


class Commune(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    # Per language; only the consultation's first language is required: a place often has
    # one name, and the others fall back to it. Other languages are allowed (a shared file).
    name: dict[str, str]
    postal_codes: list[str] = Field(default_factory=list)
    region: str | None = None

    @field_validator("postal_codes", mode="before")
    @classmethod
    def _codes_as_text(cls, value: object) -> object:
        # 5000 and "5000" alike: YAML reads unquoted codes as numbers.
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    def label(self, lang: str, source_language: str) -> str:
        """The name in `lang`, else in the source language."""
        return (
            self.name.get(lang) or self.name.get(source_language) or next(iter(self.name.values()))
        )


class CommunesFile(BaseModel):
    """`communes: {file: …}`: the list is in that file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str


def commune_problems(communes: list[Commune], languages: list[str]) -> Iterator[tuple[Loc, str]]:
    """What the ids check (bot/consultation.py) does not see: names, postal codes, region."""
    source = languages[0] if languages else ""
    for i, commune in enumerate(communes):
        loc: Loc = ("communes", i)
        if not (commune.name.get(source) or "").strip():
            yield (*loc, "name", source), f"missing {source} name (the first language is needed)"
        for lang, name in commune.name.items():
            if lang == source and not name.strip():
                continue  # said above
            if not name.strip():
                yield (*loc, "name", lang), "empty name"
            elif len(name) > MAX_NAME_CHARS:
                yield (
                    (*loc, "name", lang),
                    f"too long for a button ({len(name)} characters, at most {MAX_NAME_CHARS})",
                )
        seen: set[str] = set()
        for j, code in enumerate(commune.postal_codes):
            if not POSTAL_CODE.match(code):
                yield (*loc, "postal_codes", j), f"{code!r} is not a postal code"
            elif code in seen:
                yield (*loc, "postal_codes", j), f"postal code {code} is listed twice"
            seen.add(code)
        if commune.region is not None and not re.fullmatch(r"[a-z0-9_]{1,24}", commune.region):
            yield (*loc, "region"), "use lowercase letters, digits and _ (at most 24)"
