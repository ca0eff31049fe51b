"""Rows and files for the quota tests: templates, jobs and renders made directly (no engine)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from testutil import write_media


@pytest.fixture
def make_render():
    """make_render(team, finished_days_ago=..., output_bytes=..., charge=True) -> Render (done)."""
    from accounts.quotas import storage_charge
    from jobs.models import Job, Render, Template

    def make(team, *, finished_days_ago: float = 0, output_bytes: int = 5000, charge: bool = True, expires=True,
             status="done"):
        tpl = Template.objects.create(team=team, name="Presenter", file="")
        tpl.file.name = f"teams/{team.pk}/templates/{tpl.pk}/source.mp4"
        tpl.save()
        write_media(tpl.file.name, 100, age_seconds=7200)
        job = Job.objects.create(team=team, audio="")
        job.audio.name = f"teams/{team.pk}/jobs/{job.pk}/audio.wav"
        job.save()
        write_media(job.audio.name, 100, age_seconds=7200)
        finished = timezone.now() - timedelta(days=finished_days_ago)
        render = Render.objects.create(job=job, team=team, template=tpl, template_name=tpl.name, status=status,
                                       finished=finished, output_size_bytes=output_bytes)
        render.output.name = f"teams/{team.pk}/jobs/{job.pk}/renders/{render.pk}.mp4"
        render.log_path = f"teams/{team.pk}/jobs/{job.pk}/renders/{render.pk}.log"
        if expires:
            from accounts.quotas import render_expiry_for

            render.expires_at = render_expiry_for(team=team, finished=finished)
        render.save()
        write_media(render.output.name, output_bytes, age_seconds=7200)
        write_media(render.log_path, 10, age_seconds=7200)
        if charge:
            storage_charge(team=team, nbytes=output_bytes, reason="render_output", job=job, render=render)
        return render

    return make
