"""API texts follow the request's Accept-Language (issue 14: the portal's texts in the viewer's language)."""
from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_render_error_message_in_the_requests_language(cast, api_key, make_finished_job):
    job = make_finished_job(cast.acme, n=1, statuses=["failed"])
    render = job.renders.get()
    render.error_code, render.error_message = "no_face", "No face was found in the template video."
    render.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    url = reverse("api_render_detail", args=[render.pk])
    assert client.get(url, HTTP_ACCEPT_LANGUAGE="en").json()["error_message"] == "No face was found in the template video."
    body = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert body["error_message"] == "模板视频中未找到人脸。" and body["error_code"] == "no_face"
