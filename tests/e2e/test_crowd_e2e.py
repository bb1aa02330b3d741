"""An impatient crowd walks the survey through the real bot process, on both storages.

The members are the load benchmark's (bench/survey_members.py): they tap again when the
spinner stops on an unchanged screen, and half of them tap every button twice, 80 ms apart.
Whatever the order their taps arrive in, each member's submitted answers are exactly what
they tapped, no member ever sees a choice of theirs unticked, and no late tap costs a member
a step."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.survey_load import one_run

CROWD = 60


@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
async def test_an_impatient_crowd_leaves_exactly_what_it_tapped(
    storage: str, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    run = await one_run("consultbot", storage, CROWD, tmp_path, log, double_share=0.5)
    assert run.errors == [], log.read_text()[-3000:]
    assert run.completed == CROWD
    assert run.undone == 0  # no member saw a choice of theirs unticked
    assert run.off_plan == 0  # the stored, submitted answers are the taps
    assert run.unanswered == 0  # every tap's spinner stopped, the repeated ones' too
    assert run.violations == 0
    # Every member walked the same screens with the same taps: none was sent back to the
    # menu by a late second tap, none had to tap a choice again.
    assert [len(latencies) for _button, latencies in run.steps] == [CROWD] * len(run.steps)
