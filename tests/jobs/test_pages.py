"""Portal pages: they render for members, hide controls from viewers, and start a batch."""
from __future__ import annotations

import pytest
from django.urls import reverse

from jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def test_pages_render_and_viewers_get_no_controls(client, cast, make_template, make_job, redis_conn):
    template = make_template("face_square_3.mp4", title="Anna")
    job = make_job([template], title="Spring launch")
    client.force_login(cast.alice)
    for name in ("dashboard", "template_list", "job_list", "gallery", "job_new"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
    assert b"Spring launch" in client.get(reverse("dashboard")).content
    assert b"Spring launch" in client.get(reverse("job_list") + "?status=queued").content
    assert b"Spring launch" not in client.get(reverse("job_list") + "?status=done").content
    detail = client.get(reverse("job_detail", args=[job.pk]))
    assert detail.status_code == 200 and f"/ws/jobs/{job.pk}/".encode() in detail.content
    assert reverse("render_cancel", args=[job.renders.get().pk]).encode() in detail.content

    client.force_login(cast.vera)
    assert reverse("job_new").encode() not in client.get(reverse("dashboard")).content
    assert client.get(reverse("job_new")).status_code == 403
    detail = client.get(reverse("job_detail", args=[job.pk]))
    assert detail.status_code == 200 and reverse("render_cancel", args=[job.renders.get().pk]).encode() not in detail.content
    assert client.post(reverse("render_cancel", args=[job.renders.get().pk])).status_code == 302
    assert job.renders.get().status == "queued"  # refused by the service, not just hidden

    client.force_login(cast.charlie)
    assert b"Spring launch" not in client.get(reverse("job_list")).content


def test_new_batch_form_creates_the_job(client, cast, make_template, short_audio, redis_conn):
    t1, t2 = make_template("face_square_3.mp4", title="A"), make_template("face_square_1.mp4", title="B")
    client.force_login(cast.bob)
    with open(short_audio, "rb") as audio:
        response = client.post(reverse("job_new"), {"title": "Promo", "audio": audio, "templates": [str(t1.pk), str(t2.pk)],
                                                    "priority": "low"}, HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 201, response.content
    job = Job.objects.get()
    assert response.json()["url"] == reverse("job_detail", args=[job.pk])
    assert job.title == "Promo" and job.priority == "low" and job.created_by == cast.bob
    assert sorted(job.renders.values_list("template_name", flat=True)) == ["A", "B"]
    assert job.audio_duration == pytest.approx(2.0, abs=0.05) and len(job.audio_sha256) == 64
    with open(short_audio, "rb") as audio:
        response = client.post(reverse("job_new"), {"audio": audio, "priority": "default"})
    assert response.status_code == 200 and b"Choose at least one template" in response.content
