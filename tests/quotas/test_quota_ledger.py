"""Quota math: charges, settles, refunds and grants are ledger rows; the cache on Team follows."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Team, UsageEntry
from accounts.quotas import (
    QuotaExceeded,
    month_start,
    plan_priorities,
    plan_priority_allowed,
    render_expiry_for,
    render_minutes_grant,
    render_seconds_reserve,
    render_seconds_settle,
    render_seconds_used,
    storage_bytes_used,
    storage_charge,
    storage_release,
    team_suspend_set,
)


def _render(team, reserved):
    from jobs.models import Job, Render

    job = Job.objects.create(team=team, audio=f"teams/{team.pk}/jobs/x/audio.wav")
    return Render.objects.create(job=job, team=team, reserved_seconds=reserved)


def test_reserve_settle_refund_math(cast):
    acme = cast.acme
    acme.render_minutes_limit = 10  # 600 s
    acme.save()
    r1, r2 = _render(acme, 120), _render(acme, 120)
    render_seconds_reserve(team=acme, seconds=120, job=r1.job, render=r1)
    render_seconds_reserve(team=acme, seconds=120, job=r2.job, render=r2)
    assert render_seconds_used(team=acme) == pytest.approx(240)

    # r1 came out shorter than reserved: the difference comes back.
    render_seconds_settle(render=r1, actual_seconds=100)
    # r2 failed: all of it comes back; settling again changes nothing.
    render_seconds_settle(render=r2, actual_seconds=0)
    assert render_seconds_settle(render=r2, actual_seconds=0) is None
    assert render_seconds_used(team=acme) == pytest.approx(100)

    acme.refresh_from_db()
    assert acme.render_seconds_month == pytest.approx(100)
    reasons = list(UsageEntry.objects.filter(team=acme).order_by("created", "pk").values_list("reason", "amount"))
    assert reasons == [("render_reserve", 120), ("render_reserve", 120), ("render_settle", -20), ("render_settle", -120)]


def test_over_render_minutes_says_which_limit_and_writes_nothing(cast):
    acme = cast.acme
    acme.render_minutes_limit = 5
    acme.save()
    render_seconds_reserve(team=acme, seconds=240)
    with pytest.raises(QuotaExceeded) as exc:
        render_seconds_reserve(team=acme, seconds=120)
    assert exc.value.code == "render_minutes"
    assert "4.0 of 5.0 minutes" in str(exc.value) and "2.0 more" in str(exc.value)
    assert UsageEntry.objects.filter(team=acme).count() == 1
    # Exactly up to the limit is allowed.
    render_seconds_reserve(team=acme, seconds=60)
    assert render_seconds_used(team=acme) == pytest.approx(300)


def test_grant_gives_minutes_back_for_this_month(cast):
    acme = cast.acme
    acme.render_minutes_limit = 1
    acme.save()
    render_seconds_reserve(team=acme, seconds=60)
    with pytest.raises(QuotaExceeded):
        render_seconds_reserve(team=acme, seconds=30)
    render_minutes_grant(team=acme, minutes=2, note="support ticket 42")
    render_seconds_reserve(team=acme, seconds=90)
    grant = UsageEntry.objects.get(team=acme, reason="grant")
    assert grant.amount == -120 and "support ticket 42" in grant.note


def test_last_months_usage_does_not_count(cast):
    acme = cast.acme
    acme.render_minutes_limit = 1
    acme.save()
    UsageEntry.objects.create(team=acme, kind=UsageEntry.RENDER_SECONDS, amount=60, reason="render_reserve",
                              created=month_start() - timedelta(seconds=5))
    render_seconds_reserve(team=acme, seconds=60)  # a new month: the old minute is not counted
    assert render_seconds_used(team=acme) == pytest.approx(60)


def test_settle_of_last_months_reservation_is_booked_in_that_month(cast):
    acme = cast.acme
    render = _render(acme, 60)
    last_month = month_start() - timedelta(days=2)
    UsageEntry.objects.create(team=acme, kind=UsageEntry.RENDER_SECONDS, amount=60, reason="render_reserve",
                              render=render, created=last_month)
    render_seconds_settle(render=render, actual_seconds=0)
    # The refund does not become free minutes now.
    assert render_seconds_used(team=acme) == pytest.approx(0)
    refund = UsageEntry.objects.get(reason="render_settle")
    assert refund.created < month_start() and refund.amount == -60


def test_storage_charge_release_and_limit(cast):
    acme = cast.acme
    acme.storage_bytes_limit = 10_000
    acme.save()
    storage_charge(team=acme, nbytes=6000, reason="template_upload")
    with pytest.raises(QuotaExceeded) as exc:
        storage_charge(team=acme, nbytes=5000, reason="template_upload")
    assert exc.value.code == "storage" and exc.value.used == 6000 and exc.value.limit == 10_000
    storage_release(team=acme, nbytes=3000, reason="template_delete")
    storage_charge(team=acme, nbytes=5000, reason="template_upload")
    assert storage_bytes_used(team=acme) == 8000
    assert Team.objects.get(pk=acme.pk).storage_bytes_used == 8000
    # Another team's usage is its own.
    assert storage_bytes_used(team=cast.globex) == 0


def test_suspended_team_cannot_reserve(cast):
    team_suspend_set(team=cast.acme, suspended=True)
    with pytest.raises(QuotaExceeded) as exc:
        render_seconds_reserve(team=Team.objects.get(pk=cast.acme.pk), seconds=1)
    assert exc.value.code == "suspended"
    assert not UsageEntry.objects.exists()
    team_suspend_set(team=cast.acme, suspended=False)
    render_seconds_reserve(team=cast.acme, seconds=1)


def test_priority_ceiling(cast, settings):
    settings.PLAN_PRIORITY_CEILING = "high"
    assert plan_priorities(team=cast.acme) == ["low", "default", "high"]
    cast.acme.priority_ceiling = "default"
    assert plan_priorities(team=cast.acme) == ["low", "default"]
    assert plan_priority_allowed(team=cast.acme, priority="default")
    assert not plan_priority_allowed(team=cast.acme, priority="high")
    cast.acme.priority_ceiling = "low"
    assert not plan_priority_allowed(team=cast.acme, priority="default")


def test_render_expiry_uses_team_retention(cast, settings):
    settings.PLAN_RETENTION_DAYS = 30
    now = timezone.now()
    assert render_expiry_for(team=cast.acme, finished=now) == now + timedelta(days=30)
    cast.acme.retention_days = 3
    assert render_expiry_for(team=cast.acme, finished=now) == now + timedelta(days=3)


def test_batch_reservation_settles_per_render_and_survives_a_retry(cast):
    """jobs.services reserves once per batch (row without render); each render settles its share."""
    acme = cast.acme
    r1, r2 = _render(acme, 30), _render(acme, 30)
    r2.job = r1.job
    r2.save()
    render_seconds_reserve(team=acme, seconds=60, job=r1.job)
    render_seconds_settle(render=r1, actual_seconds=28)
    render_seconds_settle(render=r2, actual_seconds=0)  # failed
    assert render_seconds_used(team=acme) == pytest.approx(28)
    # r2 retried: reserved again, then finishes.
    render_seconds_reserve(team=acme, seconds=30, job=r2.job, render=r2)
    assert render_seconds_used(team=acme) == pytest.approx(58)
    render_seconds_settle(render=r2, actual_seconds=29)
    assert render_seconds_settle(render=r2, actual_seconds=29) is None
    assert render_seconds_used(team=acme) == pytest.approx(57)
