"""The results commentary as organisers and readers see it: the review card with its buttons,
each language's draft, and the commentary that follows the data."""

from __future__ import annotations

import json
from html import escape

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.consultation import Consultation, Phase
from bot.i18n import Translator, language_name, typeset
from bot.ui.presenters import when
from storage.repositories.commentary import CommentaryRecord


class CommentaryAction(CallbackData, prefix="rc"):
    """ok (approve) | edit, on the version the organiser saw: an older one is stale."""

    action: str
    version: int


def draft_texts(consultation: Consultation, phase: Phase) -> dict[str, str]:
    """The file's draft as the HTML the commentary is kept in (the file holds plain text)."""
    texts = phase.commentary or {}
    return {
        lang: escape(texts[lang]).strip()
        for lang in consultation.languages
        if (texts.get(lang) or "").strip()
    }


def reader_text(consultation: Consultation, record: CommentaryRecord, lang: str) -> str | None:
    """The commentary in the reader's language, else in the source language; None without."""
    return record.texts.get(lang) or record.texts.get(consultation.source_language) or None


def commentary_message(text: str, lang: str, translator: Translator) -> str:
    """What readers receive after the data."""
    heading = translator.gettext("💬 <b>Le commentaire des organisateurs</b>", locale=lang)
    return typeset(f"{heading}\n\n{text}", lang)


def draft_message(
    consultation: Consultation, record: CommentaryRecord, code: str, lang: str, tr: Translator
) -> str:
    """One language's draft, for the organisers' review (in the organiser's language)."""
    _ = tr.gettext
    heading = _("💬 <b>Commentaire en {language}</b> (version {version})", locale=lang).format(
        language=escape(language_name(code, lang)), version=record.version
    )
    text = record.texts.get(code) or _("(pas de texte)", locale=lang)
    return f"{heading}\n\n{text}"


def review_intro(consultation: Consultation, phase: Phase, lang: str, tr: Translator) -> str:
    """Above the counts, when the survey closes."""
    return typeset(
        tr.gettext(
            "📝 <b>Le sondage est clos.</b> Voici les résultats, puis le commentaire prévu "
            "pour les accompagner. Les résultats seront publiés le {date} ; le commentaire ne "
            "les suivra qu’une fois approuvé par un organisateur (approuvé plus tard, il sera "
            "envoyé à part aux mêmes destinataires).",
            locale=lang,
        ).format(date=when(phase.starts, consultation, lang, time=True)),
        lang,
    )


def warnings(
    consultation: Consultation, record: CommentaryRecord, lang: str, tr: Translator
) -> list[str]:
    """Languages whose readers would not read what the source language says now."""
    _ = tr.gettext
    source = consultation.source_language
    source_name = escape(language_name(source, lang))
    out = []
    for code in consultation.languages:
        if code == source:
            continue
        name = escape(language_name(code, lang))
        name = name[:1].upper() + name[1:]  # it starts the line
        if not record.texts.get(code):
            if record.texts.get(source):
                out.append(
                    _(
                        "⚠️ {language} : pas de texte ; ses lecteurs recevront le texte en {source}.",
                        locale=lang,
                    ).format(language=name, source=source_name)
                )
        elif record.written.get(code, 0) < record.written.get(source, 0):
            out.append(
                _(
                    "⚠️ {language} : inchangé depuis la dernière modification du texte en "
                    "{source} ; vérifiez qu’il dit toujours la même chose.",
                    locale=lang,
                ).format(language=name, source=source_name)
            )
    return out


def review_card(
    consultation: Consultation, record: CommentaryRecord, lang: str, tr: Translator
) -> str:
    """The state of the commentary: which version, what to check, approved or not."""
    _ = tr.gettext
    lines = [
        _("📝 <b>Commentaire des résultats</b> — version {version}", locale=lang).format(
            version=record.version
        )
    ]
    if record.approved and record.approved_at is not None:
        lines.append(
            _("✅ Approuvé le {date}.", locale=lang).format(
                date=when(record.approved_at, consultation, lang, time=True)
            )
        )
    elif not record.texts:
        lines.append(
            _(
                "Pas de commentaire : les résultats partiront sans. Vous pouvez en écrire un.",
                locale=lang,
            )
        )
    else:
        if record.edited_at is None:
            lines.append(_("Le brouillon du fichier de la consultation.", locale=lang))
        else:
            lines.append(
                _("Modifié le {date}.", locale=lang).format(
                    date=when(record.edited_at, consultation, lang, time=True)
                )
            )
        lines += warnings(consultation, record, lang, tr)
        lines.append(_("Approuvez-le pour qu’il suive les résultats, ou modifiez-le.", locale=lang))
    return typeset("\n".join(lines), lang)


def review_keyboard(
    record: CommentaryRecord, lang: str, tr: Translator
) -> InlineKeyboardMarkup | None:
    if record.approved:
        return None
    _ = tr.gettext
    row = []
    if record.texts:
        row.append(
            InlineKeyboardButton(
                text=_("✅ Approuver", locale=lang),
                callback_data=CommentaryAction(action="ok", version=record.version).pack(),
            )
        )
    row.append(
        InlineKeyboardButton(
            text=_("✏️ Modifier", locale=lang),
            callback_data=CommentaryAction(action="edit", version=record.version).pack(),
        )
    )
    return InlineKeyboardMarkup(inline_keyboard=[row])


def keyboard_json(markup: InlineKeyboardMarkup | None) -> str | None:
    if markup is None:
        return None
    return json.dumps(markup.model_dump(exclude_none=True), ensure_ascii=False)
