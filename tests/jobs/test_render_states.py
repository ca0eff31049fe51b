"""The render state machine: one table (Render.TRANSITIONS), one writer (render_transition).
An illegal move is refused and changes nothing; no other code writes Render.status."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import quotas
from accounts.models import UsageEntry
from jobs import services
from jobs.models import Job, Render, RenderStatusError

ROOT = Path(__file__).resolve().parents[2]
S = Render.Status


@pytest.fixture
def batch(cast, redis_conn):
    """A job of three queued renders with their render seconds reserved (no media needed)."""
    job = Job.objects.create(team=cast.acme, created_by=cast.alice, audio="x/audio.wav", audio_duration=4.0)
    renders = [Render.objects.create(job=job, team=cast.acme, template_name=f"t{i}", reserved_seconds=4.0) for i in range(3)]
    quotas.render_seconds_reserve(team=cast.acme, seconds=12.0, job=job)
    return job, renders


def _row(render) -> dict:
    return Render.objects.filter(pk=render.pk).values().get()


def test_the_table_covers_every_status_and_final_states_only_expire_or_retry():
    assert set(Render.TRANSITIONS) == set(S.values)
    assert all(to in S.values for targets in Render.TRANSITIONS.values() for to in targets)
    assert Render.TRANSITIONS[S.DONE] == {S.EXPIRED}
    assert Render.TRANSITIONS[S.FAILED] == Render.TRANSITIONS[S.CANCELLED] == {S.QUEUED}
    assert Render.TRANSITIONS[S.EXPIRED] == set()
    assert Render.allowed_from(S.PREPARING) == {S.QUEUED, *Render.ACTIVE}


@pytest.mark.parametrize("start, to", [(S.QUEUED, S.DONE), (S.DONE, S.QUEUED), (S.EXPIRED, S.QUEUED),
                                       (S.CANCELLED, S.DONE), (S.FAILED, S.RENDERING)])
def test_an_illegal_transition_is_refused_and_changes_nothing(batch, start, to):
    _job, (render, *_rest) = batch
    Render.objects.filter(pk=render.pk).update(status=start)
    before = _row(render)
    with pytest.raises(ValueError, match="TRANSITIONS"):
        services.render_transition(render=render, to=to, from_=start, stage="x")
    assert _row(render) == before
    # Without from_: the conditional update finds no allowed source, so nothing moves.
    if Render.allowed_from(to):
        assert services.render_transition(render=render, to=to, stage="x") == []
        assert _row(render) == before


def test_a_legal_transition_from_the_wrong_state_is_a_lost_claim(batch):
    _job, (render, *_rest) = batch
    before = _row(render)
    assert services.render_transition(render=render, to=S.DONE, from_=Render.ACTIVE) == []
    assert _row(render) == before


def test_save_refuses_a_status_change(batch):
    _job, (render, *_rest) = batch
    render.status = S.DONE
    with pytest.raises(RenderStatusError):
        render.save()
    assert Render.objects.get(pk=render.pk).status == S.QUEUED
    fresh = Render.objects.get(pk=render.pk)
    fresh.template_name = "renamed"
    fresh.save()  # other fields save as before
    assert services.render_transition(render=fresh, to=S.CANCELLED)
    fresh.template_name = "again"
    fresh.save()  # the new status came through the machine


def test_job_cancel_is_one_update_and_settles_each_render(cast, batch):
    job, renders = batch
    Render.objects.filter(pk=renders[2].pk).update(status=S.RENDERING)
    with CaptureQueriesContext(connection) as queries:
        services.job_cancel(job=job, user=cast.alice)
    status_updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "jobs_render" SET "status"')]
    assert len(status_updates) == 1
    statuses = dict(Render.objects.values_list("template_name", "status"))
    assert statuses == {"t0": "cancelled", "t1": "cancelled", "t2": "rendering"}
    assert Render.objects.get(pk=renders[2].pk).stage == "cancelling"
    # Each cancelled render gave its 4 s back; the running one keeps its reservation.
    used = sum(UsageEntry.objects.filter(job=job, kind=UsageEntry.RENDER_SECONDS).values_list("amount", flat=True))
    assert used == pytest.approx(4.0)
    # Twice is harmless: nothing left to cancel settles again.
    services.job_cancel(job=job, user=cast.alice)
    assert sum(UsageEntry.objects.filter(job=job, kind=UsageEntry.RENDER_SECONDS).values_list("amount", flat=True)) == pytest.approx(4.0)


def _render_status_writes(path: Path) -> list[str]:
    """`.update(status=...)` / `.update(**x)` / bulk_update(..., ["status"]) on a Render queryset
    (a receiver that names Render or renders), and `<render>.status = ...` assignments."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "render_transition":
            node.body = []  # the one writer
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("update", "bulk_update"):
            receiver = ast.unparse(node.func.value)
            if "Render" not in receiver and "render" not in receiver.lower():
                continue
            keywords = {k.arg for k in node.keywords}
            literal = ast.unparse(node)
            if "status" in keywords or None in keywords or (node.func.attr == "bulk_update" and "status" in literal):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {literal[:100]}")
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (isinstance(target, ast.Attribute) and target.attr == "status"
                        and "render" in ast.unparse(target.value).lower()):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:100]}")
    return found


def test_no_code_but_the_state_machine_writes_render_status():
    files = [p for folder in ("jobs", "accounts", "config") for p in (ROOT / folder).rglob("*.py") if "migrations" not in p.parts]
    writes = [w for p in files for w in _render_status_writes(p)]
    # ProgressReporter mirrors a landed transition on its in-memory copy; render_transition does it for refresh=False.
    assert writes == [], "Render.status written outside jobs.services.renders.render_transition:\n" + "\n".join(writes)


def test_job_retry_is_all_or_nothing(cast, batch):
    from django.core.exceptions import ValidationError

    from accounts.quotas import QuotaExceeded

    job, renders = batch
    with pytest.raises(ValidationError) as nothing:
        services.job_retry(job=job, user=cast.alice)
    assert nothing.value.code == "nothing_to_retry"
    services.job_cancel(job=job, user=cast.alice)  # all three cancelled, their 12 s given back
    # Room for one more render of 4 s, not for three: none of them is queued again.
    cast.acme.render_minutes_limit = 6.0 / 60
    cast.acme.save()
    with pytest.raises(QuotaExceeded):
        services.job_retry(job=job, user=cast.alice)
    assert set(Render.objects.filter(job=job).values_list("status", flat=True)) == {S.CANCELLED}
    cast.acme.render_minutes_limit = None
    cast.acme.save()
    job = services.job_retry(job=job, user=cast.alice)
    assert set(Render.objects.filter(job=job).values_list("status", flat=True)) == {S.QUEUED}
