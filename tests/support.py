"""Helpers shared by the test layers: consultation files with dates around now, databases."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONSULTATION = REPO / "consultations" / "deconfinement.yaml"
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def default_document() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONSULTATION.read_text(encoding="utf-8"))


def with_dates(
    document: dict[str, Any], dates: Mapping[str, tuple[datetime, datetime]]
) -> dict[str, Any]:
    """A copy whose phases (by id) get aware ISO dates; others are pushed out of the way."""
    doc = yaml.safe_load(yaml.safe_dump(document, allow_unicode=True))
    for phase in doc["phases"]:
        if phase["id"] in dates:
            starts, ends = dates[phase["id"]]
            phase["starts"], phase["ends"] = starts.isoformat(), ends.isoformat()
    return doc


def write_document(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def survey_now(now: datetime, survey_days: float = 10) -> dict[str, tuple[datetime, datetime]]:
    """Dates where the survey is open at `now`, results and ideas follow."""
    s0 = now - timedelta(days=1)
    s1 = now + timedelta(days=survey_days)
    return {
        "survey": (s0, s1),
        "results": (s1 + timedelta(minutes=1), s1 + timedelta(days=2)),
        "ideas": (s1 + timedelta(days=3), s1 + timedelta(days=300)),
    }


def unique_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"
