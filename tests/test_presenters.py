"""Option lines of the survey: the full text only when it says more than the button."""

from __future__ import annotations

from bot.consultation import load_consultation
from bot.i18n import Translator
from bot.ui.presenters import adds_to_label, option_details
from tests.support import DEFAULT_CONSULTATION

C = load_consultation(DEFAULT_CONSULTATION)


def test_a_text_that_only_adds_an_article_or_a_plural_adds_nothing() -> None:
    assert not adds_to_label("Jeunesse", "La jeunesse")
    assert not adds_to_label("Inclusion numérique", "L’inclusion numérique")
    assert not adds_to_label("Nachtleven", "Het nachtleven")
    assert not adds_to_label("Offender and victim follow-up", "Follow-up of offenders and victims")
    assert adds_to_label("Publics migrants", "L’inclusion des publics migrants")
    assert adds_to_label("Prévention des nuisances", "La diminution et la prévention des nuisances")


def test_survey_lines_show_only_what_the_buttons_do_not_say() -> None:
    tr = Translator()
    inclusion = C.question("inclusion")
    assert inclusion is not None
    fr = "\n".join(option_details(inclusion, C, "fr", tr))
    assert "Jeunesse" not in fr and "numérique" not in fr and "scolarité" not in fr
    assert "• <b>Publics migrants</b> : L’inclusion des publics migrants" in fr
    living = C.question("living_together")
    assert living is not None
    en = option_details(living, C, "en", tr)
    # "Public space: its design…" is not preceded by "Public space" once more.
    assert en[0] == "• <b>Public space</b>: its design, how it is shared and mobility within it"
    nl = option_details(living, C, "nl", tr)
    assert nl[0].startswith("• <b>De publieke ruimte</b>: de inrichting")
    focus = C.question("rehab_focus")
    assert focus is not None
    for lang in C.languages:
        assert option_details(focus, C, lang, tr) == []
