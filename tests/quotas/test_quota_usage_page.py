"""The team usage page: meters with the team's own figures, this month, next expiries."""
from __future__ import annotations

from django.urls import reverse

from accounts.quotas import render_seconds_reserve, storage_charge, team_suspend_set


def test_usage_page_shows_own_team_meters_and_expiries(fixed_clock, client, cast, make_render, settings):
    settings.PLAN_RETENTION_DAYS = 30
    cast.acme.storage_bytes_limit = 10 * 1024 * 1024
    cast.acme.render_minutes_limit = 100
    cast.acme.save()
    storage_charge(team=cast.acme, nbytes=2 * 1024 * 1024, reason="template_upload")
    render_seconds_reserve(team=cast.acme, seconds=25 * 60)
    render = make_render(cast.acme, finished_days_ago=1, charge=False)
    make_render(cast.globex, finished_days_ago=1, charge=False)
    storage_charge(team=cast.globex, nbytes=7 * 1024 * 1024, reason="template_upload")

    client.force_login(cast.vera)  # a viewer may see the usage
    response = client.get(reverse("usage"))
    assert response.status_code == 200
    page = response.content.decode()
    assert '<meter id="storage-meter" min="0" max="10485760"' in page and 'value="2097152"' in page
    assert "25.0" in page and '<meter id="minutes-meter"' in page and 'value="25.000000"' in page
    assert 'id="concurrency-meter"' in page
    assert page.count("<tr>") == 2  # header + acme's one render, not globex's
    assert render.expires_at.date().isoformat() in page
    assert 'id="renders-done">1<' in page
    assert "suspended" not in page.lower()


def test_usage_page_on_the_first_of_the_month_counts_only_this_month(fixed_clock, client, cast, make_render):
    fixed_clock.move_to("2026-07-01T00:30:00+00:00")
    make_render(cast.acme, finished_days_ago=1, charge=False)      # 30 June: last month
    make_render(cast.acme, finished_days_ago=0.01, charge=False)   # 1 July
    client.force_login(cast.vera)
    page = client.get(reverse("usage")).content.decode()
    assert 'id="renders-done">1<' in page


def test_usage_page_says_suspended(client, cast):
    team_suspend_set(team=cast.acme, suspended=True)
    client.force_login(cast.bob)
    assert "This team is suspended" in client.get(reverse("usage")).content.decode()


def test_usage_page_needs_login(client, cast):
    response = client.get(reverse("usage"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_usage_page_in_chinese(client, cast):
    client.force_login(cast.alice)
    response = client.get(reverse("usage"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
