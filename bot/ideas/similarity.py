"""Cheap text similarity (character trigrams, Jaccard) to suggest existing ideas."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+")


def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def trigrams(text: str) -> frozenset[str]:
    grams: set[str] = set()
    for word in _WORD.findall(normalize(text)):
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return frozenset(grams)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def most_similar(
    query: str, candidates: Iterable[tuple[int, str]], limit: int = 3, threshold: float = 0.2
) -> list[tuple[int, float]]:
    """Ids of the candidates most like `query`, best first, above `threshold`."""
    target = trigrams(query)
    scored = [(cid, similarity(target, trigrams(text))) for cid, text in candidates]
    scored = [s for s in scored if s[1] >= threshold]
    scored.sort(key=lambda s: -s[1])
    return scored[:limit]
