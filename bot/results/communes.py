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
from enum import StrEnum
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Consultation
from bot.i18n import Translator, at_place, percent, typeset
from bot.results.tally import (
    MESSAGE_LIMIT,
    Results,
    pack,
    rank,
    results_heading,
    several_answers,
    whose_answers,
)
from storage.repositories.tallies import Tally, add, tally_by_commune

# The organisers' table: communes below the minimum, and respondents who gave no commune.
OTHER = "other"


def shown_beside(group: int, network: int, min_group: int) -> bool:
    """Whether a group's figures may be shown beside the network's: enough in the group, and
    enough (or nobody) in the rest of the network."""
    rest = network - group
    return group >= min_group and (rest == 0 or rest >= min_group)


class Hidden(StrEnum):
    """Why a commune's figures are not shown beside the network's."""

    SMALL = "small"  # fewer than min_group respondents in the commune
    REST = "rest"  # fewer than min_group in the rest of the network: subtraction would tell


@dataclass(frozen=True)
class CommuneView:
    """What an official of `commune` is shown: the network's results and, when the group
    is large enough, the commune's (`local`; None: the network's only, and `hidden` says why
    when a commune was given)."""

    commune: str | None
    network: Results
    local: Results | None
    # Questions whose commune figures are withheld (too few of the commune, or of the rest,
    # answered them): the network's only, for those.
    withheld: frozenset[str] = frozenset()
    hidden: Hidden | None = None
    min_group: int = 5

    @property
    def too_few(self) -> bool:
        """A commune was given but its figures cannot be shown: the reader is told why."""
        return self.hidden is not None

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
        total = add(self.tallies.values())
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
            why = Hidden.SMALL if mine.respondents < self.min_group else Hidden.REST
            return CommuneView(commune, network, None, hidden=why, min_group=self.min_group)
        local = rank(self.consultation, mine)
        withheld = frozenset(
            qr.question.id
            for qr, own in zip(network.questions, local.questions, strict=True)
            if not shown_beside(own.seen, qr.seen, self.min_group)
        )
        return CommuneView(commune, network, local, withheld, min_group=self.min_group)

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


# ---------------------------------------------------------------- texts


def commune_name(consultation: Consultation, commune: str | None, lang: str) -> str:
    known = consultation.commune(commune)
    return known.label(lang, consultation.source_language) if known else (commune or "")


def hidden_reason(
    view: CommuneView, consultation: Consultation, lang: str, translator: Translator
) -> str | None:
    """Why the network's results only are shown for a commune, as plain text (None: nothing
    to explain): the council's report says it as the bot does."""
    if view.hidden is None:
        return None
    name = commune_name(consultation, view.commune, lang)
    if view.hidden == Hidden.SMALL:
        text = translator.gettext(
            "Trop peu de réponses à {commune} (moins de {min}) pour les montrer séparément : "
            "voici celles du réseau.",
            locale=lang,
        )
    else:
        text = translator.gettext(
            "À {commune}, les réponses ne sont pas montrées séparément : le reste du réseau en "
            "compte moins de {min}, qu’une soustraction dévoilerait. Voici celles du réseau.",
            locale=lang,
        )
    return typeset(at_place(text.format(commune=name, min=view.min_group), name, lang), lang)


def withheld_reason(commune: str, lang: str, translator: Translator) -> str:
    """Why a question's figures are the network's only (`commune`: the commune's name)."""
    text = translator.gettext(
        "Trop peu de réponses à {commune} à cette question pour les montrer séparément.",
        locale=lang,
    )
    return typeset(at_place(text.format(commune=commune), commune, lang), lang)


def hidden_sentence(
    view: CommuneView, consultation: Consultation, lang: str, translator: Translator
) -> str | None:
    """Why an official sees the network's results only, in Telegram's HTML (None: nothing to
    explain)."""
    reason = hidden_reason(view, consultation, lang, translator)
    return None if reason is None else "ℹ️ " + escape(reason, quote=False)


def commune_summary_parts(
    view: CommuneView, consultation: Consultation, lang: str, translator: Translator
) -> list[str]:
    """The ranked summary with the commune's counts beside the network's, option by option
    in the network's order: "Namur : 7 (58 %) · réseau : 40 (45 %)"."""
    assert view.local is not None
    c, _ = consultation, translator.gettext
    name = escape(commune_name(c, view.commune, lang))
    network, local = view.network, view.local
    count = translator.ngettext(
        "{commune} : {local} · réseau : {n} répondant",
        "{commune} : {local} · réseau : {n} répondants",
        network.respondents,
        locale=lang,
    ).format(commune=name, local=local.respondents, n=network.respondents)
    blocks = [f"{results_heading(c, lang, translator)}\n{count}"]
    for i, (qr, own) in enumerate(zip(network.questions, local.questions, strict=True), start=1):
        q = qr.question
        lines = [f"<b>{i}. {escape(c.text(q.text, lang))}</b>"]
        several = several_answers(q, lang, translator)
        if several:
            lines.append(f"<i>{escape(several)}</i>")
        whose = whose_answers(q, c, lang, translator)
        if whose:
            lines.append(f"<i>{escape(whose)}</i>")
        withheld = q.id in view.withheld
        if withheld:
            lines.append(f"<i>{withheld_reason(name, lang, translator)}</i>")
        elif whose or qr.seen != network.respondents or own.seen != local.respondents:
            lines.append(
                "<i>"
                + translator.ngettext(
                    "({commune} : {local} · réseau : {n} personne concernée)",
                    "({commune} : {local} · réseau : {n} personnes concernées)",
                    qr.seen,
                    locale=lang,
                ).format(commune=name, local=own.seen, n=qr.seen)
                + "</i>"
            )
        mine = {r.option_id: r for r in own.options}
        for r in qr.options:
            option = qr.question.option(r.option_id)
            label = escape(c.text(option.text or option.label, lang)) if option else r.option_id
            theirs = percent(r.share, lang)
            if withheld:
                line = _("• {option} — réseau : {count} ({percent})", locale=lang).format(
                    option=label, count=r.count, percent=theirs
                )
            else:
                m = mine[r.option_id]
                line = _(
                    "• {option} — {commune} : {local} ({local_percent}) · réseau : {count} "
                    "({percent})",
                    locale=lang,
                ).format(
                    option=label,
                    commune=name,
                    local=m.count,
                    local_percent=percent(m.share, lang),
                    count=r.count,
                    percent=theirs,
                )
            lines.append(line)
        blocks.append("\n".join(lines))
    return pack([typeset(block, lang) for block in blocks], MESSAGE_LIMIT)
