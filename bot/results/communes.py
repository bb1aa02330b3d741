"""Results per commune beside the network's, and what keeps a small group from being singled out.

A commune's figures are shown (to its officials, in organisers' tables) only when the commune
has `results.min_group` respondents or more (the consultation file, default 5) AND the rest of
the network has as many (or none): an official sees their commune and the network, so the
network minus the commune must not be a handful either, or subtraction would give away the
answers of the few others (12 and 2 respondents: the network's 14 minus Namur's 12). The same
rule holds per question (a follow-up seen by 1 person of a commune is not shown for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Consultation
from bot.results.tally import Results, rank
from storage.repositories.survey import Tally, tally_by_commune

# The organisers' table: communes below the minimum, and respondents who gave no commune.
OTHER = "other"


def shown_beside(group: int, network: int, min_group: int) -> bool:
    """Whether a group's figures may be shown beside the network's: enough in the group, and
    enough (or nobody) in the rest of the network."""
    rest = network - group
    return group >= min_group and (rest == 0 or rest >= min_group)


def add(tallies: list[Tally]) -> Tally:
    seen: dict[str, int] = {}
    chosen: dict[tuple[str, str], int] = {}
    for t in tallies:
        for qid, n in t.seen.items():
            seen[qid] = seen.get(qid, 0) + n
        for key, n in t.chosen.items():
            chosen[key] = chosen.get(key, 0) + n
    return Tally(sum(t.respondents for t in tallies), seen, chosen)


@dataclass(frozen=True)
class CommuneView:
    """What an official of `commune` is shown: the network's results and, when the group
    is large enough, the commune's (`local`; None: the network's only)."""

    commune: str | None
    network: Results
    local: Results | None
    # Questions whose commune figures are withheld (too few of the commune, or of the rest,
    # answered them): the network's only, for those.
    withheld: frozenset[str] = frozenset()

    @property
    def too_few(self) -> bool:
        """A commune was given but its figures cannot be shown: the reader is told why."""
        return self.commune is not None and self.local is None

    @property
    def key(self) -> str | None:
        """What the charts depend on besides the language: the commune when it is shown."""
        return self.commune if self.local is not None else None

    def fingerprint(self) -> tuple[object, ...]:
        local = self.local.fingerprint() if self.local is not None else None
        return (self.network.fingerprint(), self.key, local, tuple(sorted(self.withheld)))


@dataclass(frozen=True)
class ByCommune:
    """One reading of the responses: each commune's tally (None: no commune given) and the
    network's, their sum."""

    consultation: Consultation
    tallies: dict[str | None, Tally]
    min_group: int
    network: Results = field(init=False)

    def __post_init__(self) -> None:
        total = add(list(self.tallies.values()))
        object.__setattr__(self, "network", rank(self.consultation, total))

    def respondents(self, commune: str | None) -> int:
        found = self.tallies.get(commune)
        return found.respondents if found else 0

    def view(self, commune: str | None) -> CommuneView:
        network = self.network
        if commune is None:
            return CommuneView(None, network, None)
        mine = self.tallies.get(commune, Tally(0, {}, {}))
        if not shown_beside(mine.respondents, network.respondents, self.min_group):
            return CommuneView(commune, network, None)
        local = rank(self.consultation, mine)
        withheld = frozenset(
            qr.question.id
            for qr, own in zip(network.questions, local.questions, strict=True)
            if not shown_beside(own.seen, qr.seen, self.min_group)
        )
        return CommuneView(commune, network, local, withheld)

    def groups(self) -> list[tuple[str, Tally]]:
        """For organisers: the communes of `min_group` respondents or more, most respondents
        first, then OTHER (the smaller communes and those who gave none) if anyone is in it.
        Organisers hold each response's commune (the responses export): the rest-of-network
        rule, for officials, would hide nothing from them."""
        shown = sorted(
            (
                (commune, t)
                for commune, t in self.tallies.items()
                if commune is not None and t.respondents >= self.min_group
            ),
            key=lambda item: (-item[1].respondents, item[0]),
        )
        names = {commune for commune, _t in shown}
        rest = add([t for commune, t in self.tallies.items() if commune not in names])
        return [*shown, *([(OTHER, rest)] if rest.respondents else [])]


async def compute_by_commune(session: AsyncSession, consultation: Consultation) -> ByCommune:
    tallies = await tally_by_commune(session, consultation.id)
    return ByCommune(consultation, tallies, consultation.results.min_group)
