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

