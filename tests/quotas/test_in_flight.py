""""In flight" has one meaning (jobs.selectors.in_flight_q): renders being worked on plus queued
renders already handed to a worker queue. The usage page, the admin's team list and the
dispatcher's free-slot count all agree on it."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job, Render
from jobs.selectors import in_flight_q, renders_in_flight
from jobs.usage import team_usage, teams_with_in_flight

pytestmark = pytest.mark.django_db


@pytest.fixture
def mix(cast):
    """acme: one rendering, one queued and handed to RQ, two queued waiting, one done."""
    job = Job.objects.create(team=cast.acme, audio="")
    now = timezone.now()
    rows = [("rendering", None), ("queued", now), ("queued", None), ("queued", None), ("done", None)]
    return [Render.objects.create(team=cast.acme, job=job, template_name=f"t{i}", status=s, enqueued_at=at)
            for i, (s, at) in enumerate(rows)]


def test_in_flight_is_active_plus_handed_over(cast, mix):
    assert set(renders_in_flight(team=cast.acme)) == {mix[0], mix[1]}
    assert Render.objects.filter(in_flight_q()).count() == 2


def test_usage_page_counts_in_flight_and_waiting(cast, mix, client):
    usage = team_usage(team=cast.acme)
    assert usage.concurrency.used == 2 and usage.queued == 2
    client.force_login(cast.alice)
    page = client.get(reverse("usage")).content.decode()
    assert "2 renders waiting for a free slot." in page


def test_admin_team_list_counts_the_same(cast, mix):
    from accounts.models import Team
    from accounts.usage import teams_with_usage

    team = teams_with_in_flight(teams_with_usage(Team.objects.filter(pk=cast.acme.pk))).get()
    assert team.in_flight == 2 and team.member_count == 3


def test_dispatcher_counts_the_same(cast, mix, redis_conn):
    """renders_dispatch fills only the slots in_flight_q leaves free of max_concurrent_renders
    (real RQ queues on the test Redis: the one render handed over is really enqueued)."""
    from jobs import services

    cast.acme.max_concurrent_renders = 3
    cast.acme.save()
    before = renders_in_flight(team=cast.acme).count()
    assert services.renders_dispatch(team=cast.acme) == 3 - before == 1
    handed = [r.pk for r in mix if r.status == "queued" and r.enqueued_at is None
              and type(r).objects.get(pk=r.pk).enqueued_at is not None]
    assert handed == [mix[2].pk]
    assert renders_in_flight(team=cast.acme).count() == 3
    assert services.renders_dispatch(team=cast.acme) == 0  # no slot left
