"""The render priorities are one list (accounts.models.PRIORITIES): the jobs app, the plans, the
dispatcher and the worker queues use the same names."""
from django.conf import settings

from accounts.models import PRIORITIES, Team
from accounts.quotas import plan_priorities
from jobs.models import Job
from jobs.selectors import PRIORITY_RANK, priorities_allowed


def test_every_place_names_the_same_priorities():
    assert set(Job.Priority.values) == set(PRIORITIES)
    assert set(settings.RENDER_QUEUES) == set(PRIORITIES)
    assert [c for c, _label in Team._meta.get_field("priority_ceiling").choices] == list(PRIORITIES)
    assert sorted(PRIORITY_RANK, key=PRIORITY_RANK.get) == ["high", "default", "low"]


def test_plan_ceiling_caps_the_list(db):
    team = Team.objects.create(name="T", slug="t-prio", priority_ceiling="default")
    assert plan_priorities(team=team) == ["low", "default"]
    assert priorities_allowed(team=team) == ["default", "low"]
