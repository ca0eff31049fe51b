"""Reads of the jobs app, always scoped to a team through accounts.access."""
from __future__ import annotations

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.access import team_object_or_404, team_scoped
from accounts.models import PRIORITIES, Team
from jobs.models import Job, Render, Template, error_text

# --- renders holding a worker slot -----------------------------------------------------------

def in_flight_q(prefix: str = "") -> Q:
    """The one meaning of "in flight": renders that hold one of their team's worker slots, i.e.
    what the plan's max_concurrent_renders limits. That is every render being worked on
    (preparing, rendering, encoding) and every queued render already handed to a worker queue
    (enqueued_at set): it will run as soon as a worker takes it, so it counts against the limit
    the moment it is handed over. Queued renders not yet handed over wait for a free slot and are
    not in flight. The dispatcher, the usage page and the admin all count with this.

    `prefix` is a relation path for use across a join ("renders__" on teams)."""
    return (Q(**{f"{prefix}status__in": Render.ACTIVE})
            | Q(**{f"{prefix}status": Render.Status.QUEUED, f"{prefix}enqueued_at__isnull": False}))


def renders_in_flight(*, team: Team) -> QuerySet[Render]:
    return Render.objects.filter(team=team).filter(in_flight_q())


def renders_waiting_for_slot_q(prefix: str = "") -> Q:
    """Queued renders not yet handed to a worker queue (the complement of in flight among
    queued); `prefix` as in in_flight_q."""
    return Q(**{f"{prefix}status": Render.Status.QUEUED, f"{prefix}enqueued_at__isnull": True})


# Renders not finished yet: waiting, handed over, or being worked on.
RENDER_UNFINISHED = (Render.Status.QUEUED, *Render.ACTIVE)


def render_status_counts(renders) -> dict[str, int]:
    """How many of `renders` (rows already loaded, e.g. a job's prefetched renders) are in each
    status: {"done": 2, "failed": 1}. The one per-status count of the API, portal and webhooks."""
    counts: dict[str, int] = {}
    for r in renders:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts


def priority_labels(priorities) -> list[str]:
    """Queue names as people read them ("default" -> "normal")."""
    labels = dict(Job.Priority.choices)
    return [str(labels.get(p, p)) for p in priorities]


def priorities_allowed(*, team: Team) -> list[str]:
    """Priorities a team may use, best first, capped by its plan's ceiling."""
    from accounts.quotas import plan_priorities

    return list(reversed(plan_priorities(team=team)))


def search_text(value: str | None) -> str:
    """The one cleaning of a visitor's search text for every list (portal, API, gallery): trimmed,
    without NUL characters (no stored name holds one, and PostgreSQL refuses them in a query)."""
    return (value or "").replace("\x00", "").strip()


def templates_for_team(*, team: Team, tag: str = "", search: str = "") -> QuerySet[Template]:
    qs = team_scoped(Template, actor=team).select_related("uploaded_by")
    if tag:
        qs = qs.filter(pk__in=[t.pk for t in qs if tag in (t.tags or [])])
    search = search_text(search)
    if search:
        qs = qs.filter(name__icontains=search)
    return qs


def template_detail_for(*, actor, pk) -> Template:
    return team_object_or_404(Template, actor=actor, pk=pk)


def jobs_for_team(*, team: Team, status: str = "", search: str = "") -> QuerySet[Job]:
    # renders come prefetched in one query for the whole page: progress and per-status counts
    # of each row are then computed without a query per job
    qs = team_scoped(Job, actor=team).select_related("created_by").prefetch_related("renders").annotate(
        render_count=Count("renders"),
        done_count=Count("renders", filter=Q(renders__status__in=("done", "expired"))),
        failed_count=Count("renders", filter=Q(renders__status="failed")),
    ).order_by("-created")
    if status:
        qs = qs.filter(status=status)
    search = search_text(search)
    if search:
        qs = qs.filter(Q(title__icontains=search) | Q(audio_filename__icontains=search))
    return qs


def job_detail_for(*, actor, pk) -> Job:
    return team_object_or_404(Job.objects.select_related("team", "created_by"), actor=actor, pk=pk)


def render_detail_for(*, actor, pk) -> Render:
    return team_object_or_404(Render.objects.select_related("job", "team", "template"), actor=actor, pk=pk)


def renders_for_job(*, job: Job) -> QuerySet[Render]:
    return job.renders.select_related("template").order_by("created", "template_name", "id")


def renders_finished_for_team(*, team: Team, search: str = "", template=None, job=None, since=None, until=None) -> QuerySet[Render]:
    """The gallery: every finished video of the team, newest first; filtered by words (template
    name or batch title), one template, one batch, and the finishing day (from/to, inclusive)."""
    qs = team_scoped(Render, actor=team).filter(status="done").exclude(output="").select_related("job", "template").order_by("-finished")
    search = search_text(search)
    if search:
        qs = qs.filter(Q(template_name__icontains=search) | Q(job__title__icontains=search))
    if template:
        qs = qs.filter(template_id=template)
    if job:
        qs = qs.filter(job_id=job)
    if since:
        qs = qs.filter(finished__date__gte=since)
    if until:
        qs = qs.filter(finished__date__lte=until)
    return qs


def job_progress(job: Job) -> float:
    """Overall progress: the mean of the renders' progress (final renders count as complete)."""
    renders = list(job.renders.all())  # prefetched by jobs_for_team, else one query
    if not renders:
        return 0.0
    return sum(1.0 if r.status in Render.FINAL else float(r.progress) for r in renders) / len(renders)


def render_eta_seconds(render: Render) -> int | None:
    """Rough time left from the pace so far; None until there is a pace to go on."""
    if render.status not in Render.ACTIVE or not render.started or render.progress < 0.02:
        return None
    elapsed = (timezone.now() - render.started).total_seconds()
    return max(0, int(elapsed / render.progress * (1 - render.progress)))


def render_quality_notes(render: Render) -> list[str]:
    """Plain-words warnings about a finished render's quality report (empty when it looks fine)."""
    return quality_notes(render.quality or {})


def quality_notes(q: dict) -> list[str]:
    """The warnings for a quality report {face_fraction, sync_score, ...}, in the active language."""
    return [f["note"] for f in quality_findings(q)]


def quality_findings(q: dict) -> list[dict]:
    """Each warning with what was measured and what usually helps: [{"note", "help"}]."""
    findings = []
    face = q.get("face_fraction")
    if face is not None and face < settings.QUALITY_WARN_FACE_FRACTION:
        findings.append({
            "note": _("face lost in %(pct)d %% of frames") % {"pct": round((1 - face) * 100)},
            "help": _("In those frames the face tracker did not find the face, so the mouth there is the template's own. "
                      "What usually helps: a template where the face stays in view, turned to the camera and not covered "
                      "by hands or a microphone."),
        })
    # The z-score against shifted audio, not the raw correlation: real people speaking their
    # own audio measure r 0.08-0.33 but z 1.5-6 (docs/QUALITY.md), so a raw-r threshold flagged
    # genuine footage.  Renders from before sync_z was recorded are not judged.
    z = q.get("sync_z")
    if z is not None and z < settings.QUALITY_WARN_SYNC_Z:
        findings.append({
            "note": _("lip sync looks weak"),
            "help": _("Measured: how much more closely the mouth movement follows the rhythm of the speech than it would "
                      "by chance (a score of %(score).1f; real people speaking score 1.5 to 6, and we flag results below "
                      "%(limit).1f). What usually helps: a template where the presenter speaks for 10 seconds or more and "
                      "shows the teeth, with the face large and well lit, and clear speech without music.")
            % {"score": z, "limit": settings.QUALITY_WARN_SYNC_Z},
        })
    return findings


def render_counts_for_team(*, team: Team) -> dict[str, int]:
    rows = Render.objects.filter(team=team).values("status").annotate(n=Count("id"))
    return {r["status"]: r["n"] for r in rows}


def render_error_text(render: Render) -> str:
    """The render's error in the reader's language when its code is known (the worker stores
    messages in the default language), else the stored sentence."""
    return error_text(render.error_code, render.error_message) if render.error_message else ""


DEFAULT_RENDER_PACE = 4.0  # wall seconds per second of audio when the team has no finished renders yet


def batch_estimate_inputs(*, team: Team) -> dict:
    """What the New batch page needs to show a batch's cost and finish time before it starts:
    render seconds left this month, the team's recent pace (wall seconds per audio second, the
    median of its last 20 finished renders), its parallel renders, and the audio seconds
    already ahead of a new batch in its queue."""
    from accounts.quotas import render_seconds_used

    recent = (team_scoped(Render, actor=team).filter(status="done", started__isnull=False, finished__isnull=False,
                                                    output_duration__gt=0).order_by("-finished")[:20])
    paces = sorted((r.finished - r.started).total_seconds() / r.output_duration for r in recent)
    ahead = team_scoped(Render, actor=team).exclude(status__in=Render.FINAL).values_list("reserved_seconds", "progress")
    return {
        "seconds_left": max(0.0, float(team.plan("render_minutes_limit")) * 60.0 - render_seconds_used(team=team)),
        "pace": round(paces[len(paces) // 2], 3) if paces else DEFAULT_RENDER_PACE,
        "parallel": max(1, int(team.plan("max_concurrent_renders"))),
        "ahead_seconds": round(sum(float(s or 0) * (1 - float(p or 0)) for s, p in ahead), 1),
    }


# Dispatch order, best first: accounts.models.PRIORITIES (the one list of priorities) reversed.
PRIORITY_RANK = {p: rank for rank, p in enumerate(reversed(PRIORITIES))}


def renders_waiting_in_order(*, team: Team) -> QuerySet[Render]:
    """The team's renders waiting for a free slot (queued, not yet in RQ), in the order
    services.renders_dispatch hands them out: best priority, then oldest batch, then oldest."""
    return (Render.objects.filter(renders_waiting_for_slot_q(), team=team)
            .select_related("job")
            .annotate(rank=Case(*(When(job__priority=p, then=Value(r)) for p, r in PRIORITY_RANK.items()),
                                default=Value(1), output_field=IntegerField()))
            .order_by("rank", "job__created", "created", "id"))


def render_queue_position(render: Render) -> int | None:
    """For a queued render: 0 when it is already handed to a worker queue (next up), else its
    place among the team's waiting renders (1 = next); None for any other status."""
    if render.status != Render.Status.QUEUED:
        return None
    if render.enqueued_at is not None:
        return 0
    ids = list(renders_waiting_in_order(team=render.team).values_list("id", flat=True)[:1000])
    return ids.index(render.pk) + 1 if render.pk in ids else None


def job_eta_seconds(job: Job) -> int | None:
    """Rough time until the whole batch is done: its unfinished audio-seconds at the team's
    recent pace, spread over its parallel renders. None once everything has ended."""
    import math

    rows = list(job.renders.exclude(status__in=Render.FINAL).values_list("progress", flat=True))
    if not rows:
        return None
    est = batch_estimate_inputs(team=job.team)
    work = sum((1 - float(p or 0)) for p in rows) * float(job.audio_duration or 0) * est["pace"]
    return int(math.ceil(work / min(est["parallel"], len(rows))))
