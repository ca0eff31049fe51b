"""A suspended team cannot start renders (through the real job_create) but can still download."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Team, UsageEntry
from accounts.quotas import QuotaExceeded, team_suspend_set
from jobs.models import Job, Template


@pytest.mark.slow
def test_suspended_team_cannot_create_a_job_and_nothing_is_left(cast, media_dir):
    tpl = Template.objects.create(team=cast.acme, name="Presenter", file=f"teams/{cast.acme.pk}/templates/x/source.mp4")
    team_suspend_set(team=cast.acme, suspended=True)
    audio = SimpleUploadedFile("speech.wav", (media_dir / "speech_en_1.wav").read_bytes(), content_type="audio/wav")
    with pytest.raises(QuotaExceeded) as exc:
        from jobs.services import job_create

        job_create(team=Team.objects.get(pk=cast.acme.pk), user=cast.alice, audio_file=audio, template_ids=[tpl.pk])
    assert exc.value.code == "suspended" and "suspended" in str(exc.value)
    assert not Job.objects.exists() and not UsageEntry.objects.exists()
    jobs_dir = Path(settings.MEDIA_ROOT) / f"teams/{cast.acme.pk}/jobs"
    assert not jobs_dir.exists() or not any(jobs_dir.rglob("*.*"))


def test_suspended_team_can_still_download(client, cast, make_render):
    render = make_render(cast.acme)
    team_suspend_set(team=cast.acme, suspended=True)
    client.force_login(cast.bob)
    response = client.get(reverse("render_download", args=[render.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\0" * render.output_size_bytes
