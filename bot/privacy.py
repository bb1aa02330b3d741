"""A member's personal data: what we hold (/mydata) and its erasure (/forget)."""

from __future__ import annotations

from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.i18n import language_name, role_name
from bot.presenters import when
from storage.repositories.members import erase, personal_data


async def my_data_text(session: AsyncSession, app: AppContext, member_id: int, lang: str) -> str:
    _ = app.translator.gettext
    data = await personal_data(session, member_id)
    if not data:
        return _("Nous ne conservons aucune donnée à votre sujet.")
    member = data["member"]
    c = app.consultation
    lines = [
        _("<b>Vos données</b>"),
        _("Identifiant Telegram : {id}").format(id=member.id),  # type: ignore[attr-defined]
        _("Prénom : {name}").format(name=escape(member.first_name or "—")),  # type: ignore[attr-defined]
        _("Langue : {lang}").format(
            lang=language_name(member.language, lang) if member.language else "—"  # type: ignore[attr-defined]
        ),
        _("Rôles : {roles}").format(
            roles=", ".join(sorted(_(role_name(r)) for r in member.role_names)) or "—"  # type: ignore[attr-defined]
        ),
        _("Inscrit le {date}").format(date=when(member.created_at, c, lang)),  # type: ignore[attr-defined]
    ]
    answers: dict[str, list[str]] = data["answers"]  # type: ignore[assignment]
    if answers:
        lines.append("")
        lines.append(_("<b>Vos réponses au sondage</b>"))
        for q in c.questions:
            if q.id in answers:
                labels = [
                    c.text(o.label, lang) for o in q.options if o.id in answers[q.id]
                ] or answers[q.id]
                lines.append(f"• {escape(c.text(q.text, lang))} → {escape(', '.join(labels))}")
    ideas = data["ideas"]
    lines.append("")
    lines.append(
        _("Idées : {ideas} · commentaires : {comments} · soutiens : {supports}").format(
            ideas=len(ideas),
            comments=data["comments"],
            supports=data["supports"],  # type: ignore[arg-type]
        )
    )
    lines.append("")
    lines.append(_("Pour tout effacer : /forget"))
    return "\n".join(lines)


async def forget(session: AsyncSession, member_id: int) -> None:
    await erase(session, member_id, f":{member_id}:{member_id}:")
    await session.commit()
