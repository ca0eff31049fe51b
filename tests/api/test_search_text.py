"""A search text with a NUL character (PostgreSQL refuses NUL in a query) is a search, not a
500, through every door that searches: API job and template lists, portal lists, gallery."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.mark.parametrize("path", ["/api/v1/jobs/", "/api/v1/templates/"])
def test_api_search_with_a_nul_character(cast, api_key, make_finished_job, path):
    make_finished_job(cast.acme, n=1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    response = client.get(path, {"search": "ab\x00c"})
    assert response.status_code == 200, response.content[:300]
    assert response.json()["results"] == []
    everything = client.get(path, {"search": "\x00"})  # nothing left to search for: the whole list
    assert everything.status_code == 200 and everything.json()["count"] >= 1


@pytest.mark.parametrize("name", ["job_list", "template_list", "gallery"])
def test_portal_search_with_a_nul_character(client, cast, make_finished_job, name):
    from django.urls import reverse

    make_finished_job(cast.acme, n=1)
    client.force_login(cast.alice)
    response = client.get(reverse(name), {"q": "ab\x00c"})
    assert response.status_code == 200, response.status_code
