"""The consultation file: its models (model.py), and loading and checking it with located
error messages (loading.py)."""

from bot.consultation.loading import (
    ConsultationError,
    Loc,
    Problem,
    check_consultation,
    load_consultation,
    parse_consultation,
    with_absolute_files,
)
from bot.consultation.model import (
    DURATION_PATTERN,
    ID_PATTERN,
    MAX_LABEL_CHARS,
    Condition,
    Consultation,
    Option,
    Phase,
    PhaseKind,
    Project,
    Question,
    ResultsSettings,
    Role,
    Text,
    parse_duration,
)

__all__ = [
    "DURATION_PATTERN",
    "ID_PATTERN",
    "MAX_LABEL_CHARS",
    "Condition",
    "Consultation",
    "ConsultationError",
    "Loc",
    "Option",
    "Phase",
    "PhaseKind",
    "Problem",
    "Project",
    "Question",
    "ResultsSettings",
    "Role",
    "Text",
    "check_consultation",
    "load_consultation",
    "parse_consultation",
    "parse_duration",
    "with_absolute_files",
]
