"""Concurrent enqueues against a nearly full quota never overshoot (row lock on the team).

Needs PostgreSQL: SQLite serialises every writer anyway, so the race cannot happen there."""
from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connection, transaction

from accounts.models import Team, UsageEntry
from accounts.quotas import QuotaExceeded, render_seconds_reserve, render_seconds_used

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif("postgresql" not in settings.DATABASES["default"]["ENGINE"],
                       reason="row-lock race test needs PostgreSQL (set DATABASE_URL=postgres://...)"),
]


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_reservations_never_overshoot():
    team = Team.objects.create(name="Race", slug="race", render_minutes_limit=10)  # 600 s
    UsageEntry.objects.create(team=team, kind=UsageEntry.RENDER_SECONDS, amount=540, reason="render_reserve")
    start = threading.Barrier(20)
    ok, refused, errors = [], [], []

    def enqueue():
        try:
            start.wait()
            with transaction.atomic():
                render_seconds_reserve(team=Team.objects.get(pk=team.pk), seconds=10)
                # Work inside the transaction (creating the job's rows) widens the race window.
                connection.cursor().execute("SELECT pg_sleep(0.02)")
            ok.append(1)
        except QuotaExceeded:
            refused.append(1)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=enqueue) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(ok) == 6 and len(refused) == 14
    assert render_seconds_used(team=team) == pytest.approx(600)
    team.refresh_from_db()
    assert team.render_seconds_month == pytest.approx(600)
