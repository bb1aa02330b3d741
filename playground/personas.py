"""Who the playground lets you be: members of each kind, the moderation group, an organiser."""

from __future__ import annotations

from dataclasses import dataclass

MODERATION_GROUP_ID = -1_001_000_000_001
MODERATION_GROUP_TITLE = "Modération"
# A token of the right shape: the emulator accepts any, the bot checks the format.
PLAYGROUND_TOKEN = "100000001:playground-" + "x" * 24
BOT_USERNAME = "consultbot_playground_bot"


@dataclass(frozen=True)
class Persona:
    key: str
    name: str
    user_id: int
    language: str
    role: str  # ambassador | official | moderator | organiser
    label: str  # what the page shows under the name
    commune: str | None = None  # an id of the consultation's communes, as an invitation says


PERSONAS: tuple[Persona, ...] = (
    Persona("amelie", "Amélie", 1001, "fr", "ambassador", "ambassadrice · fr · Namur", "namur"),
    Persona("bram", "Bram", 1002, "nl", "ambassador", "ambassadeur · nl · Gent", "gent"),
    Persona("emma", "Emma", 1003, "en", "ambassador", "ambassador · en"),
    Persona("olivier", "Olivier", 2001, "fr", "official", "élu local · fr · Namur", "namur"),
    Persona("mona", "Mona", 3001, "fr", "moderator", "modératrice · fr"),
    Persona("marc", "Marc", 3002, "nl", "moderator", "moderator · nl"),
    Persona("olga", "Olga", 4001, "fr", "organiser", "organisatrice (admin) · fr"),
)
# Neighbours who answered the survey before the playground starts (no chat, no role): enough
# in Namur and elsewhere for Olivier to see Namur's results beside the network's (at least
# `results.min_group` of each).
NEIGHBOURS: tuple[tuple[int, str], ...] = tuple(
    (9001 + i, "namur" if i % 2 == 0 else "gent") for i in range(10)
)
MODERATORS = tuple(p for p in PERSONAS if p.role == "moderator")
ORGANISERS = tuple(p for p in PERSONAS if p.role == "organiser")


def persona(key: str) -> Persona | None:
    return next((p for p in PERSONAS if p.key == key), None)
