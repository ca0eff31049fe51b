"""Usage selectors (reads) for the team usage page and the admin console."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Case, Count, F, FloatField, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Coalesce, NullIf

from accounts.models import Team
from accounts.quotas import month_key, month_start, render_seconds_used, storage_bytes_used

# Renders that occupy a worker: what the concurrency limit counts.
IN_FLIGHT = ("preparing", "rendering", "encoding")
NEAR_LIMIT = 0.8


@dataclass(frozen=True)
class Meter:
    used: float
    limit: float

    @property
    def fraction(self) -> float:
        return self.used / self.limit if self.limit > 0 else 1.0

    @property
    def percent(self) -> int:
        return int(round(min(max(self.fraction, 0.0), 1.0) * 100))

    @property
    def near_limit(self) -> bool:
        return self.fraction >= NEAR_LIMIT


@dataclass(frozen=True)
class TeamUsage:
    storage: Meter              # bytes
    minutes: Meter              # render minutes this calendar month
    concurrency: Meter          # renders running now / max concurrent
    queued: int
    month_start: datetime
    renders_this_month: int     # finished this month
    renders_failed_this_month: int
    next_expiries: list         # Render rows, soonest first
    retention_days: int
    priorities: list[str]
    suspended: bool


def team_usage(*, team: Team, expiries: int = 10) -> TeamUsage:
    """Everything the usage page shows, exact (from the ledger), for one team."""
    from accounts.quotas import plan_priorities
    from jobs.models import Render

    start = month_start()
    renders = Render.objects.filter(team=team)
    counts = renders.aggregate(
        running=Count("pk", filter=Q(status__in=IN_FLIGHT)),
        queued=Count("pk", filter=Q(status="queued")),
        done=Count("pk", filter=Q(status="done", finished__gte=start)),
        failed=Count("pk", filter=Q(status="failed", finished__gte=start)),
    )
    next_expiries = list(
        renders.filter(status="done", expires_at__isnull=False).select_related("job").order_by("expires_at")[:expiries]
    )
    return TeamUsage(
        storage=Meter(storage_bytes_used(team=team), float(team.plan("storage_bytes_limit"))),
        minutes=Meter(render_seconds_used(team=team) / 60.0, float(team.plan("render_minutes_limit"))),
        concurrency=Meter(counts["running"], float(team.plan("max_concurrent_renders"))),
        queued=counts["queued"],
        month_start=start,
        renders_this_month=counts["done"],
        renders_failed_this_month=counts["failed"],
        next_expiries=next_expiries,
        retention_days=int(team.plan("retention_days")),
        priorities=plan_priorities(team=team),
        suspended=team.suspended,
    )


def teams_with_usage(qs: QuerySet[Team] | None = None) -> QuerySet[Team]:
    """Teams annotated with usage fractions from the cached figures (one query, for lists):
    storage_fraction, minutes_fraction, in_flight, in_flight_fraction, member_count."""
    qs = qs if qs is not None else Team.objects.all()
    # A limit of 0 (nothing allowed) gives a null fraction instead of a division by zero.
    storage_limit = NullIf(Coalesce(Cast("storage_bytes_limit", FloatField()), Value(float(settings.PLAN_STORAGE_BYTES))), Value(0.0))
    minutes_limit = NullIf(Coalesce("render_minutes_limit", Value(float(settings.PLAN_RENDER_MINUTES))), Value(0.0))
    concurrency_limit = NullIf(Coalesce(Cast("max_concurrent_renders", FloatField()), Value(float(settings.PLAN_MAX_CONCURRENT_RENDERS))), Value(0.0))
    month_seconds = Case(When(render_month_key=month_key(), then=F("render_seconds_month")), default=Value(0.0),
                         output_field=FloatField())
    return qs.annotate(
        member_count=Count("memberships", distinct=True),
        in_flight=Count("renders", filter=Q(renders__status__in=IN_FLIGHT), distinct=True),
    ).annotate(
        storage_fraction=Cast("storage_bytes_used", FloatField()) / storage_limit,
        minutes_used=month_seconds / 60.0,
        minutes_fraction=month_seconds / (minutes_limit * 60.0),
        in_flight_fraction=Cast("in_flight", FloatField()) / concurrency_limit,
    )


def near_limit_q() -> Q:
    """Teams at or over NEAR_LIMIT of any limit (use on teams_with_usage())."""
    return Q(storage_fraction__gte=NEAR_LIMIT) | Q(minutes_fraction__gte=NEAR_LIMIT) | Q(in_flight_fraction__gte=NEAR_LIMIT)
