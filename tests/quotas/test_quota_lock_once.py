"""Every quota write locks the team row once (select_for_update), not once per step."""
from __future__ import annotations

import pytest

from accounts import quotas
from accounts.models import UsageEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def locks(monkeypatch):
    calls = []
    real = quotas._locked

    def counting(team):
        calls.append(team.pk)
        return real(team)

    monkeypatch.setattr(quotas, "_locked", counting)
    return calls


def test_each_write_locks_once(cast, make_render, locks):
    team = cast.acme
    render = make_render(team, charge=False)
    operations = [
        lambda: quotas.storage_charge(team=team, nbytes=10, reason="upload"),
        lambda: quotas.storage_release(team=team, nbytes=10, reason="delete"),
        lambda: quotas.render_seconds_reserve(team=team, seconds=5.0, render=render, job=render.job),
        lambda: quotas.render_seconds_settle(render=render, actual_seconds=3.0),
        lambda: quotas.render_minutes_grant(team=team, minutes=1.0, note="thanks"),
        lambda: quotas.usage_record(team=team, kind=UsageEntry.STORAGE, amount=1, reason="test"),
    ]
    for op in operations:
        locks.clear()
        op()
        assert locks == [team.pk], op


def test_the_cached_figures_still_follow_the_ledger(cast):
    team = cast.acme
    quotas.storage_charge(team=team, nbytes=1000, reason="upload")
    team.refresh_from_db()
    assert team.storage_bytes_used == quotas.storage_bytes_used(team=team) == 1000
