"""Portal pages a first-time user meets (issue 14), through Django's test client."""
from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [False, True])
def test_csrf_failure_is_the_products_page_never_djangos(settings, cast, debug):
    settings.DEBUG = debug
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.alice)
    response = client.post("/templates/upload/", {"name": "x"}, HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert response.status_code == 403
    assert "The form has expired" in html and 'class="site-header"' in html
    assert "CSRF verification failed" not in html and "Help" not in html  # Django's page and its debug notes


def test_csrf_failure_page_in_chinese(cast):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"login": "x", "password": "y"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 403
    assert "表单已过期" in response.content.decode()


def test_a_batch_with_done_and_cancelled_renders_is_done_not_partial(cast, make_finished_job):
    from jobs import services
    from jobs.models import Job

    job = make_finished_job(cast.acme, n=3, statuses=["done", "done", "cancelled"])
    assert services.job_status_refresh(job=job).status == Job.Status.DONE
    job = make_finished_job(cast.acme, n=3, statuses=["done", "failed", "cancelled"])
    assert services.job_status_refresh(job=job).status == Job.Status.PARTIAL
    job = make_finished_job(cast.acme, n=2, statuses=["cancelled", "cancelled"])
    assert services.job_status_refresh(job=job).status == Job.Status.CANCELLED



def test_favicon_and_a_status_page_for_people(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith(".svg")
    page = client.get("/status/", HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert page["Content-Type"].startswith("text/html") and page.status_code in (200, 503)
    assert "<h1>Status</h1>" in html and "Database" in html and "Render workers" in html
    assert 'href="/status/"' in html  # the footer's Status link is this page, not the JSON


def test_dates_and_queue_names_read_the_same_everywhere(client, cast, fixed_clock):
    client.force_login(cast.alice)
    en = client.get("/usage/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "since 1 Jun 2026" in en
    assert "Queues your plan may use: low, normal, high." in en
    zh = client.get("/usage/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "2026年6月1日" in zh and "六月" not in zh and "普通" in zh


def test_batch_default_title_eta_and_face_fraction_in_plain_words(client, cast, make_finished_job):
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import Render

    job = make_finished_job(cast.acme, n=1, title="")
    assert str(job) == f"Batch {str(job.pk)[:8]}"
    render = job.renders.get()
    # The pace says the time is up, but the render is still going.
    Render.objects.filter(pk=render.pk).update(status="rendering", progress=0.9999, output="",
                                               started=timezone.now() - timedelta(minutes=5))
    render.template.prep_status, render.template.prep_face_fraction = "ready", 1.0
    render.template.save()
    client.force_login(cast.alice)
    html = client.get(f"/jobs/{job.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "almost done" in html and "about 0 s left" not in html
    assert f"<h1>Batch {str(job.pk)[:8]}</h1>" in html
    page = client.get(f"/templates/{render.template_id}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "face found in 100 % of frames" in page


def test_secrets_shown_once_have_a_copy_button_and_no_inline_handlers(client, cast):
    import re
    from pathlib import Path

    client.force_login(cast.alice)
    response = client.post("/team/api/", {"action": "create_key", "name": "ci"}, follow=True)
    html = response.content.decode()
    assert 'data-copy="#new-key"' in html and "onfocus" not in html
    templates = Path(__file__).resolve().parents[2] / "templates"
    handlers = [str(p) for p in templates.rglob("*.html") if re.search(r"\son[a-z]+=\"", p.read_text())]
    assert handlers == []  # the CSP allows no inline script: behaviour lives in static/js


def test_the_same_bytes_twice_are_one_template_and_leave_no_file(cast, make_template, settings, redis_conn):
    from pathlib import Path

    from jobs import services
    from jobs.models import Template

    first = make_template("face_square_3.mp4", warm=False)
    files_before = sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())
    with pytest.raises(services.DuplicateTemplate) as caught:
        make_template("face_square_3.mp4", warm=False, title="again", allow_duplicate=False)
    assert caught.value.template == first and "already in the library" in caught.value.messages[0]
    assert Template.objects.count() == 1
    assert sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()) == files_before
    # Another team may have the same video.
    make_template("face_square_3.mp4", warm=False, team=cast.globex, user=cast.charlie, allow_duplicate=False)
    assert Template.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_waiting_videos_show_their_place_in_line_and_the_batch_its_time_left(client, cast, make_template, make_job, redis_conn):
    from jobs import progress, selectors

    cast.acme.max_concurrent_renders = 1
    cast.acme.save()
    templates = [make_template(n, warm=False) for n in ("face_square_1.mp4", "face_square_2.mp4", "face_square_3.mp4")]
    job = make_job(templates)
    renders = list(job.renders.order_by("created", "id"))
    places = sorted(selectors.render_queue_position(r) for r in renders)
    assert places == [0, 1, 2]  # one handed to the worker queue, two waiting for the team's slot
    later = make_job(templates[:1], priority="high", title="urgent")
    urgent = later.renders.get()
    assert selectors.render_queue_position(urgent) == 1  # high priority goes first among the waiting
    assert selectors.job_eta_seconds(job) > 0
    state = progress.job_state(job)
    assert state["eta_seconds"] == selectors.job_eta_seconds(job)
    client.force_login(cast.alice)
    html = client.get(f"/jobs/{job.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "next in line" in html and "waiting: 2 in line" in html and "left for the whole batch" in html
