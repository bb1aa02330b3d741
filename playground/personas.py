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


PERSONAS: tuple[Persona, ...] = (
    Persona("amelie", "Amélie", 1001, "fr", "ambassador", "ambassadrice · fr"),
    Persona("bram", "Bram", 1002, "nl", "ambassador", "ambassadeur · nl"),
    Persona("emma", "Emma", 1003, "en", "ambassador", "ambassador · en"),
    Persona("olivier", "Olivier", 2001, "fr", "official", "élu local · fr"),
    Persona("mona", "Mona", 3001, "fr", "moderator", "modératrice · fr"),
    Persona("marc", "Marc", 3002, "nl", "moderator", "moderator · nl"),
    Persona("olga", "Olga", 4001, "fr", "organiser", "organisatrice (admin) · fr"),
)
MODERATORS = tuple(p for p in PERSONAS if p.role == "moderator")
ORGANISERS = tuple(p for p in PERSONAS if p.role == "organiser")


def persona(key: str) -> Persona | None:
    return next((p for p in PERSONAS if p.key == key), None)
