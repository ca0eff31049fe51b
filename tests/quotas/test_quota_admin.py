"""The admin console: staff only, usage columns and filters, actions that work and are logged."""
from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from accounts.models import Team, UsageEntry
from accounts.quotas import render_seconds_used, storage_charge
from jobs.models import Render


@pytest.fixture
def staff_client(client, cast):
    from accounts.models import User

    staff = User.objects.create_superuser(email="ops@example.com", password=cast.password)
    client.force_login(staff)
    client.staff = staff
    return client


def _action(client, action, pks, **extra):
    url = reverse("admin:accounts_team_changelist")
    return client.post(url, {"action": action, "_selected_action": [str(pk) for pk in pks], **extra}, follow=True)


def test_team_admin_not_staff_is_sent_to_admin_login(client, cast):
    client.force_login(cast.alice)  # owner of acme, not staff
    for url in (reverse("admin:index"), reverse("admin:accounts_team_changelist"), "/admin/rq/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/admin/login/" in response["Location"]


def test_team_list_shows_usage_and_near_limit_filter(staff_client, cast):
    cast.acme.storage_bytes_limit = 1000
    cast.acme.save()
    storage_charge(team=cast.acme, nbytes=900, reason="template_upload")
    url = reverse("admin:accounts_team_changelist")
    page = staff_client.get(url).content.decode()
    assert "900 B / 1000 B (90%)" in page and "Globex" in page
    near = staff_client.get(url + "?usage=near").content.decode()
    assert "Acme" in near and "Globex" not in near
    assert "Globex" in staff_client.get(url + "?usage=ok").content.decode()
    found = staff_client.get(url + "?q=charlie@example.com").content.decode()
    assert "Globex" in found and f"/accounts/team/{cast.acme.pk}/" not in found
    # Member count and the inline memberships on the change page.
    change = staff_client.get(reverse("admin:accounts_team_change", args=[cast.acme.pk])).content.decode()
    assert "bob@example.com" in change or "Bob" in change


def test_suspend_and_resume_are_logged(staff_client, cast):
    response = _action(staff_client, "suspend_teams", [cast.acme.pk])
    assert response.status_code == 200
    assert Team.objects.get(pk=cast.acme.pk).suspended
    assert not Team.objects.get(pk=cast.globex.pk).suspended
    assert LogEntry.objects.filter(object_id=str(cast.acme.pk), change_message="Suspended", user=staff_client.staff).exists()
    _action(staff_client, "resume_teams", [cast.acme.pk])
    assert not Team.objects.get(pk=cast.acme.pk).suspended
    assert LogEntry.objects.filter(object_id=str(cast.acme.pk), change_message="Resumed").exists()


def test_grant_minutes_asks_then_writes_a_grant_row(staff_client, cast):
    # First post: the intermediate form, nothing written yet.
    page = _action(staff_client, "grant_minutes", [cast.acme.pk]).content.decode()
    assert 'name="minutes"' in page and 'name="note"' in page
    assert not UsageEntry.objects.exists()
    response = _action(staff_client, "grant_minutes", [cast.acme.pk], apply="1", minutes="15", note="outage refund")
    assert response.status_code == 200
    grant = UsageEntry.objects.get(team=cast.acme)
    assert grant.reason == "grant" and grant.amount == -900 and "outage refund" in grant.note
    assert render_seconds_used(team=cast.acme) == -900
    assert LogEntry.objects.filter(object_id=str(cast.acme.pk), change_message__contains="Granted 15 render minutes").exists()


def test_purge_expired_now(staff_client, cast, make_render, settings):
    settings.PLAN_RETENTION_DAYS = 1
    old = make_render(cast.acme, finished_days_ago=5)
    other = make_render(cast.globex, finished_days_ago=5)
    _action(staff_client, "purge_expired_outputs", [cast.acme.pk])
    assert Render.objects.get(pk=old.pk).status == "expired"
    assert Render.objects.get(pk=other.pk).status == "done"  # not selected
    assert LogEntry.objects.filter(object_id=str(cast.acme.pk), change_message__startswith="Purged 1 expired").exists()


def test_change_plan_by_editing_fields(staff_client, cast):
    url = reverse("admin:accounts_team_change", args=[cast.acme.pk])
    form = {
        "name": "Acme", "slug": "acme", "render_minutes_limit": "1200", "max_concurrent_renders": "8",
        "priority_ceiling": "default", "storage_bytes_limit": "", "retention_days": "14",
        "template_max_bytes": "", "template_max_seconds": "", "audio_max_bytes": "", "audio_max_seconds": "",
        "webhook_url": "",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
    }
    response = staff_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    acme = Team.objects.get(pk=cast.acme.pk)
    assert acme.render_minutes_limit == 1200 and acme.plan("max_concurrent_renders") == 8 and acme.retention_days == 14
    entry = LogEntry.objects.get(object_id=str(acme.pk), action_flag=2)
    assert "render_minutes_limit" in entry.change_message or "Render minutes limit" in entry.get_change_message()


def test_render_retry_action(staff_client, cast, make_render):
    render = make_render(cast.acme, status="failed", charge=False)
    render.job.audio_duration = 3.0
    render.job.save()
    response = staff_client.post(reverse("admin:jobs_render_changelist"),
                                 {"action": "retry_renders", "_selected_action": [str(render.pk)]}, follow=True)
    assert response.status_code == 200
    assert Render.objects.get(pk=render.pk).status in ("queued", "preparing", "rendering")
    assert LogEntry.objects.filter(object_id=str(render.pk), change_message="Retried from the admin").exists()
    assert UsageEntry.objects.filter(render=render, reason="render_reserve", amount=3.0).exists()


def test_admin_pages_render_and_hide_secrets(staff_client, cast):
    from accounts.models import ApiKey

    ApiKey.objects.create(team=cast.acme, name="ci", prefix="mp_abcd", key_hash="f" * 64)
    for name in ("accounts_user", "accounts_membership", "accounts_invitation", "accounts_apikey", "accounts_usageentry",
                 "jobs_template", "jobs_job", "jobs_render", "jobs_sharelink", "jobs_webhookdelivery"):
        response = staff_client.get(reverse(f"admin:{name}_changelist"))
        assert response.status_code == 200, name
        assert "f" * 64 not in response.content.decode()
    index = staff_client.get(reverse("admin:index")).content.decode()
    assert 'href="/admin/rq/"' in index
    # The ledger is read-only.
    assert staff_client.get(reverse("admin:accounts_usageentry_add")).status_code == 403
