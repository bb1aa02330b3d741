"""What happens when a phase opens or closes, or a reminder falls due: exactly once, via the outbox."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Phase, Role
from bot.context import AppContext
from bot.i18n import Translator
from bot.ideas.cards import commune_mark
from bot.ideas.rules import idea_link
from bot.organisers.alerts import AdminAlerts
from bot.phases.kinds import PhaseRun, Preparation, phase_type
from bot.phases.timeline import Edge, Transition
from bot.results.charts import chunks
from bot.results.communes import CommuneView, compute_by_commune, hidden_sentence
from bot.results.delivery import album_ids, chart_pushers, summary_broadcast
from bot.results.tally import (
    MESSAGE_LIMIT,
    Results,
    pack,
    results_heading,
    results_intro,
    summary_parts,
)
from bot.results.view import results_texts
from bot.services import AppServices, UpdateServices
from bot.ui.presenters import when
from storage.models import Idea
from storage.repositories.communes import recipients_with_communes
from storage.repositories.ideas import IdeaRepository
from storage.repositories.members import MemberRepository, recipients
from storage.repositories.outbox import NewDelivery, OutboxRepository
from storage.repositories.survey import members_without_submission
from storage.repositories.transitions import TransitionRepository

log = logging.getLogger(__name__)


# The network's most supported ideas in each commune's digest.
DIGEST_TOP = 5
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(minutes=15)


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min … at most 15 minutes between two tries of a failed transition."""
    return min(MAX_RETRY, FIRST_RETRY * 2 ** min(attempts - 1, 10))


async def run_due(app: AppContext, services: AppServices, now: datetime | None = None) -> list[str]:
    """Record and act on every due transition not yet recorded, in time order. One that
    raises is recorded as failed, retried later with a back-off, and does not hold back
    the ones after it."""
    now = now or app.clock()
    done = []
    await _prepare_openings(app, services, now)
    for event in app.timeline.due(now):
        key = f"{app.consultation.id}:{event.key}"
        try:
            async with services.sessionmaker() as session:
                if not await TransitionRepository(session).claim(key, event.at, now):
                    await session.rollback()
                    continue
                # The record and the messages it causes commit together: all or nothing.
                outcome = await perform(session, app, services, event, now)
                await TransitionRepository(session).set_outcome(key, outcome)
                await session.commit()
        except Exception as exc:
            log.exception("transition %s failed", key)
            await record_failure(app, services, event, key, now, exc)
            done.append(f"{event.key}:failed")
            continue
        log.info("transition %s: %s", key, outcome)
        done.append(f"{event.key}:{outcome}")
    return done


async def _prepare_openings(app: AppContext, services: AppServices, now: datetime) -> None:
    """Before the due openings not yet recorded, what their kinds need done outside the
    transition's transaction (e.g. the results charts: no write lock may be held meanwhile)."""
    c = app.consultation
    kinds = {p.id: phase_type(p.kind) for p in c.phases}
    work: dict[str, Preparation] = {}
    for e in app.timeline.due(now):
        prepare = kinds[e.phase_id].opening_preparation() if e.edge == Edge.OPEN else None
        if prepare is not None:
            work[f"{c.id}:{e.key}"] = prepare
    if not work:
        return
    async with services.sessionmaker() as session:
        recorded = await TransitionRepository(session).all()
    for key, prepare in work.items():
        if key not in recorded:
            await prepare(app, services)


async def render_results_charts(app: AppContext, services: AppServices) -> None:
    """The results charts in every language, and each officials' commune's, rendered before
    the results open (a render takes seconds) and kept for the opening's deliveries."""
    c = app.consultation
    async with services.sessionmaker() as session:
        found = await compute_by_commune(session, c)
        officials = await recipients_with_communes(session, [Role.OFFICIAL], c.source_language)
    for lang in app.languages:
        await services.charts.album(found.network, c, lang, services.translator)
    for lang, commune in sorted({(p.language, p.commune) for p in officials if p.commune}):
        view = found.view(commune if app.communes.get(commune) else None)
        if view.key is not None and lang in app.languages:
            await services.charts.album(view.network, c, lang, services.translator, view)


async def record_failure(
    app: AppContext,
    services: AppServices,
    event: Transition,
    key: str,
    now: datetime,
    exc: Exception,
) -> None:
    """Kept for /status and the retry; the organisers are told once."""
    error = f"{type(exc).__name__}: {exc}"
    try:
        async with services.sessionmaker() as session:
            repo = TransitionRepository(session)
            record = (await repo.all()).get(key)
            attempts = (record.attempts if record is not None else 0) + 1
            retry_at = now + retry_delay(attempts)
            await repo.record_failure(key, event.at, now, error, retry_at)
            alerts = AdminAlerts(app, services.translator)
            await alerts.transition_failed(session, event.key, error, retry_at, now)
            await session.commit()
        services.doorbell.ring()
    except Exception:  # the database itself is down: the next run tries the transition again
        log.exception("recording the failure of transition %s failed", key)


async def perform(
    session: AsyncSession, app: AppContext, services: AppServices, event: Transition, now: datetime
) -> str:
    phase = next(p for p in app.consultation.phases if p.id == event.phase_id)
    kind = phase_type(phase.kind)
    run = PhaseRun(session, app, services, phase, now)
    open_now = phase.starts <= now <= phase.ends
    if event.edge == Edge.CLOSE:
        return await kind.closed(run)
    if event.edge == Edge.DIGEST:
        return await kind.digested(run, event)
    if event.edge == Edge.REMIND and any(
        e.edge == Edge.REMIND and e.phase_id == phase.id and e.at > event.at
        for e in app.timeline.due(now)
    ):
        # Several reminders fell due during downtime: members get the last one only.
        return "merged into a later reminder"
    if event.edge == Edge.OPEN and now > phase.ends:
        # The whole phase passed while the bot was down: its kind says whether it is still due.
        late = await kind.opened_late(run)
        if late is not None:
            return late
    if not open_now:
        # Caught up after downtime: an announcement for a phase already over would mislead.
        return "skipped: phase over"
    if event.edge == Edge.REMIND:
        return await kind.reminded(run, event.detail)
    return await kind.opened(run)


async def announce_phase(run: PhaseRun, roles: list[Role]) -> str:
    c, phase = run.app.consultation, run.phase
    people = await recipients(run.session, roles, c.source_language)
    n = await _tell_each(
        run,
        people,
        "open",
        "announce",
        lambda lang: phase_announcement(run.app, run.services.translator, phase, lang),
    )
    return f"announced to {n}"


async def _tell_each(
    run: PhaseRun,
    people: list[tuple[int, str]],
    step: str,
    topic: str,
    text_for: Callable[[str], str],
) -> int:
    """One message per member, in the member's language (the interface strings too, not only
    the phase's texts), queued once whatever the retries: the dedupe key names the step."""
    c, phase, translator = run.app.consultation, run.phase, run.services.translator
    items = []
    for member_id, lang in people:
        with translator.use(lang):
            text = text_for(lang)
        items.append(
            NewDelivery(
                dedupe_key=f"{c.id}:{phase.id}:{step}:{member_id}",
                topic=f"{topic}:{phase.id}",
                chat_id=member_id,
                text=text,
            )
        )
    await OutboxRepository(run.session).enqueue(items, run.now)
    return len(items)


def phase_announcement(app: AppContext, translator: Translator, phase: Phase, lang: str) -> str:
    c = app.consultation
    _ = translator.gettext
    title = escape(c.text(phase.title, lang))
    end = when(phase.ends, c, lang, time=True)
    lines = [_("📣 <b>{title}</b> : c’est ouvert, jusqu’au {end}.").format(title=title, end=end)]
    if phase.description:
        lines.append(escape(c.text(phase.description, lang)).strip())
    if phase.projects:
        lines.append("\n".join(f"• {escape(c.text(p.title, lang))}" for p in phase.projects))
    lines.append(_("Touchez /start pour participer."))
    return "\n\n".join(lines)


async def remind(run: PhaseRun, before_end: int) -> str:
    c, phase, _ = run.app.consultation, run.phase, run.services.translator.gettext
    people = await recipients(run.session, [Role.AMBASSADOR], c.source_language)
    pending = set(await members_without_submission(run.session, c.id, [m for m, _lang in people]))

    def text_for(lang: str) -> str:
        return _(
            "⏰ Le sondage « {title} » se termine le {end}. Vous n’avez pas encore envoyé "
            "vos réponses : touchez /start pour continuer."
        ).format(title=escape(c.text(phase.title, lang)), end=when(phase.ends, c, lang, time=True))

    waiting = [(member_id, lang) for member_id, lang in people if member_id in pending]
    n = await _tell_each(run, waiting, f"remind:{before_end}", "remind", text_for)
    return f"reminded {n}"


async def open_commentary_review(run: PhaseRun) -> str:
    """The survey closed: the organisers review the results commentary (bot/results/commentary.py)."""
    services = UpdateServices(run.session, run.app, run.services)
    told = await services.commentary.open_review(run.now)
    return f"closed, review to {told}" if told else "closed"


async def broadcast_results(run: PhaseRun, late: bool = False) -> str:
    """The results to the phase's audience: each official beside their commune's (when large
    enough; else the network's and why), everybody else the network's."""
    session, app, services, phase, now = run.session, run.app, run.services, run.phase, run.now
    c = app.consultation
    found = await compute_by_commune(session, c)
    # Locked: an organiser approving at this very moment either comes first (the commentary
    # goes with the results) or sees the broadcast recorded (and sends it after them).
    commentary = UpdateServices(session, app, services).commentary
    approved = await commentary.for_readers(lock=True)
    people = await recipients_with_communes(session, phase.audience, c.source_language)
    officials = set(await MemberRepository(session).ids_with_roles([Role.OFFICIAL]))
    # One message each (📊 asks for the charts), unless the file pushes the charts to a role;
    # an official gets the charts pushed when their commune is shown beside the network (one
    # album per language and commune, uploaded once, then re-sent by file_id) or, too small
    # to be shown, with the sentence saying why.
    pushed = await chart_pushers(session, phase)
    groups: dict[tuple[str, str | None, bool], list[int]] = defaultdict(list)
    views: dict[int, CommuneView] = {}
    for person in people:
        official = person.member_id in officials
        view = found.view(person.commune if official and app.communes.get(person.commune) else None)
        views[person.member_id] = view
        push = person.member_id in pushed or view.key is not None or view.hidden is not None
        groups[(person.language, view.key, push)].append(person.member_id)
    outbox = OutboxRepository(session)
    items: list[NewDelivery] = []
    topic = f"results:{phase.id}"
    results = found.network
    for (lang, _commune, push), members in groups.items():
        note = late_note(app, services.translator, phase, lang) if late else None
        after = commentary.reader_message(approved, lang) if approved else None
        if not push:  # the commentary in the same message, when it fits
            items += await summary_broadcast(
                app, services.translator, results, lang, members, topic, note, after
            )
            continue
        items.extend(
            await results_deliveries(
                outbox,
                app,
                services,
                results,
                lang,
                members,
                topic,
                note,
                after,
                views={m: views[m] for m in members},
            )
        )
    await outbox.enqueue(items, now)
    return f"results to {len(people)}" + (" (late)" if late else "")


def late_note(app: AppContext, translator: Translator, phase: Phase, lang: str) -> str:
    c = app.consultation
    return translator.gettext(
        "⏳ Ces résultats arrivent en retard : le bot était indisponible pendant la phase "
        "des résultats ({start} – {end}).",
        locale=lang,
    ).format(start=when(phase.starts, c, lang), end=when(phase.ends, c, lang))


async def results_deliveries(
    outbox: OutboxRepository,
    app: AppContext,
    services: AppServices,
    results: Results,
    lang: str,
    members: list[int],
    topic: str,
    note: str | None = None,
    commentary: str | None = None,
    views: dict[int, CommuneView] | None = None,
) -> list[NewDelivery]:
    """The results phase's text, the charts as albums (each photo uploaded once per language
    and commune, then re-sent by file_id), the summary parts and the approved commentary, in
    that order for each member; a note (e.g. "late") goes under the first album's caption.
    With `views`, the members' (one commune shown, or none: bot/results/communes.py), and for
    those whose commune is too small, the sentence saying why, after the phase's text."""
    c = app.consultation
    intro = results_intro(c, lang)
    translator = services.translator
    view = next(iter(views.values())) if views else None
    if view is not None and view.key is not None:
        _why, parts = results_texts(view, app, lang, translator)
    else:
        parts = summary_parts(results, c, lang, translator)
    caption = results_heading(c, lang, translator)
    if view is not None and view.key is not None:  # a commune beside the network
        album = await services.charts.album(results, c, lang, translator, view)
        name = f"results-{lang}-{view.key}"
        photos = [
            await outbox.add_media(f"{name}-{i + 1}.png", png, file_id=album.file_ids[i])
            for i, png in enumerate(album.pngs)
        ]
        albums = [
            await outbox.add_album([photos[i] for i in group]) for group in chunks(len(photos))
        ]
    else:
        # The same rows as the albums members ask for with 📊: uploaded once, re-sent by
        # file_id.
        albums = await album_ids(outbox, services.charts, results, c, lang, translator)
    if note:  # e.g. "late": under the first album's caption
        caption = f"{caption}\n\n{note}"
    items = []
    for member_id in members:
        key = f"{c.id}:{topic}:{member_id}"
        if intro:
            items.append(NewDelivery(f"{key}:intro", topic, member_id, text=intro))
        mine = views.get(member_id) if views else None
        why = hidden_sentence(mine, c, lang, translator) if mine is not None else None
        if why:
            items.append(NewDelivery(f"{key}:commune", topic, member_id, text=why))
        for j, album_id in enumerate(albums):
            items.append(
                NewDelivery(
                    f"{key}:chart" if j == 0 else f"{key}:chart{j}",
                    topic,
                    member_id,
                    text=caption if j == 0 else None,
                    media_id=album_id,
                )
            )
        for i, part in enumerate(parts):
            items.append(NewDelivery(f"{key}:{i}", topic, member_id, text=part))
        if commentary:  # the same key as when it follows later (bot/results/commentary.py)
            items.append(NewDelivery(f"{key}:commentary", topic, member_id, text=commentary))
    return items


async def send_digest(run: PhaseRun, event: Transition) -> str:
    """Officials' digest of ideas approved since the last digest; nothing when nothing is new."""
    session, app, services, phase, now = run.session, run.app, run.services, run.phase, run.now
    later = [
        e
        for e in app.timeline.due(now)
        if e.edge == Edge.DIGEST and e.phase_id == phase.id and e.at > event.at
    ]
    if later:
        return "merged into a later digest"
    c = app.consultation
    prefix = f"{c.id}:{phase.id}:{Edge.DIGEST}:"
    previous = [
        t
        for key, t in (await TransitionRepository(session).all()).items()
        if key.startswith(prefix)
        and t.status == "done"
        and not t.outcome.startswith("merged")
        and t.scheduled_at < event.at
    ]
    start = max((t.scheduled_at for t in previous), default=phase.starts - timedelta(seconds=1))
    repo = IdeaRepository(session)
    ideas = await repo.approved_between(c.id, start, event.at)
    if not ideas:
        return "nothing new"
    # Each commune's officials get its ideas, and the network's most supported; an official
    # who gave no commune gets all the new ideas.
    top = await repo.most_supported(c.id, DIGEST_TOP) if app.communes else []
    people = await recipients_with_communes(session, [Role.OFFICIAL], c.source_language)
    items = []
    for person in people:
        commune = person.commune if app.communes.get(person.commune) else None
        parts = digest_parts(
            app, services.translator, phase, ideas, start, event.at, person.language, commune, top
        )
        for i, part in enumerate(parts):
            items.append(
                NewDelivery(
                    f"{c.id}:digest:{event.detail}:{person.member_id}:{i}",
                    f"digest:{phase.id}",
                    person.member_id,
                    text=part,
                )
            )
    await OutboxRepository(session).enqueue(items, now)
    return f"sent {len(ideas)} ideas to {len(people)}"


def digest_parts(
    app: AppContext,
    translator: Translator,
    phase: Phase,
    ideas: list[Idea],
    start: datetime,
    end: datetime,
    lang: str,
    commune: str | None = None,
    top: list[Idea] | None = None,
) -> list[str]:
    """The new approved ideas by project: all of them, or with `commune` those from that
    commune (and a line when there are none), then `top`, the network's most supported."""
    c = app.consultation
    _ = translator.gettext
    header = translator.ngettext(
        "🗞 <b>{n} nouvelle idée approuvée</b> ({start} – {end})",
        "🗞 <b>{n} nouvelles idées approuvées</b> ({start} – {end})",
        len(ideas),
        locale=lang,
    ).format(n=len(ideas), start=when(max(start, phase.starts), c, lang), end=when(end, c, lang))
    blocks = [header]
    name = escape(app.communes.name_of(commune, lang) or "")
    if commune is not None:
        ideas = [i for i in ideas if i.commune == commune]
        blocks.append(
            _("📍 <b>Commune : {commune}</b>", locale=lang).format(commune=name)
            if ideas
            else _("📍 {commune} : aucune nouvelle idée cette fois.", locale=lang).format(
                commune=name
            )
        )
    for project in phase.projects:
        mine = [i for i in ideas if i.project_id == project.id]
        if mine:
            lines = [f"<b>{escape(c.text(project.title, lang))}</b>"]
            lines += [f"• {escape(i.title)} — {idea_link(app, i.id)}" for i in mine]
            blocks.append("\n".join(lines))
    if commune is not None and top:
        lines = [_("🔥 <b>Les plus soutenues du réseau</b>", locale=lang)]
        # "• {title} — " as above: /forget finds and redacts an erased idea's title here too.
        lines += [
            f"• {escape(i.title)} — 👍 {i.supports}{commune_mark(app, i, lang, ' · ')} · "
            f"{idea_link(app, i.id)}"
            for i in top
        ]
        blocks.append("\n".join(lines))
    return pack(blocks, MESSAGE_LIMIT)
