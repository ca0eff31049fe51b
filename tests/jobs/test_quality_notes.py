"""The job page's quality notes: judged on the sync z-score, not on the raw correlation."""
from __future__ import annotations

import pytest

from jobs.models import Render
from jobs.selectors import render_quality_notes


@pytest.mark.parametrize("quality,weak", [
    ({"face_fraction": 1.0, "sync_score": 0.12, "sync_lag": 0, "sync_z": 3.1}, False),  # real footage looks like this
    ({"face_fraction": 1.0, "sync_score": 0.05, "sync_lag": 2, "sync_z": 0.2}, True),
    ({"face_fraction": 1.0, "sync_score": 0.05, "sync_lag": 2}, False),  # recorded before sync_z: not judged
])
def test_lip_sync_note_follows_the_z_score(quality, weak):
    notes = [str(n) for n in render_quality_notes(Render(quality=quality))]
    assert ("lip sync looks weak" in notes) is weak


def test_face_lost_note():
    notes = [str(n) for n in render_quality_notes(Render(quality={"face_fraction": 0.5, "sync_z": 3.0}))]
    assert notes == ["face lost in 50 % of frames"]
