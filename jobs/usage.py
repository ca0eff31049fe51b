"""Usage reads that need renders: the team usage page, the API's usage figures and the admin's
"renders running" column. The ledger figures themselves are accounts.quotas; this module adds
the renders (jobs.selectors.in_flight_q is what counts against max_concurrent_renders)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, FloatField, Q, QuerySet, Value
from django.db.models.functions import Cast, Coalesce, NullIf

from accounts.models import Team
from accounts.quotas import month_start, plan_priorities, render_seconds_used, storage_bytes_used
from accounts.usage import NEAR_LIMIT
from jobs.models import Render
from jobs.selectors import in_flight_q, renders_waiting_for_slot_q


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
    concurrency: Meter          # renders in flight now / max concurrent
    queued: int                 # queued renders waiting for a free slot
    month_start: datetime
    renders_this_month: int     # finished this month
    renders_failed_this_month: int
    next_expiries: list         # Render rows, soonest first
    retention_days: int
    priorities: list[str]
    suspended: bool


def usage_meters(*, team: Team) -> tuple[Meter, Meter]:
    """Storage (bytes) and render minutes this month against the plan, exact from the ledger:
    what the usage page and GET /api/v1/usage/ both show."""
    return (Meter(storage_bytes_used(team=team), float(team.plan("storage_bytes_limit"))),
            Meter(render_seconds_used(team=team) / 60.0, float(team.plan("render_minutes_limit"))))


def team_usage(*, team: Team, expiries: int = 10) -> TeamUsage:
    """Everything the usage page shows, exact (from the ledger), for one team."""
    start = month_start()
    renders = Render.objects.filter(team=team)
    counts = renders.aggregate(
        in_flight=Count("pk", filter=in_flight_q()),
        queued=Count("pk", filter=renders_waiting_for_slot_q()),
        done=Count("pk", filter=Q(status="done", finished__gte=start)),
        failed=Count("pk", filter=Q(status="failed", finished__gte=start)),
    )
    next_expiries = list(
        renders.filter(status="done", expires_at__isnull=False).select_related("job").order_by("expires_at")[:expiries]
    )
    storage, minutes = usage_meters(team=team)
    return TeamUsage(
        storage=storage,
        minutes=minutes,
        concurrency=Meter(counts["in_flight"], float(team.plan("max_concurrent_renders"))),
        queued=counts["queued"],
        month_start=start,
        renders_this_month=counts["done"],
        renders_failed_this_month=counts["failed"],
        next_expiries=next_expiries,
        retention_days=int(team.plan("retention_days")),
        priorities=plan_priorities(team=team),
        suspended=team.suspended,
    )


def teams_with_in_flight(qs: QuerySet[Team]) -> QuerySet[Team]:
    """Teams (from accounts.usage.teams_with_usage) annotated with in_flight and
    in_flight_fraction (of max_concurrent_renders), in the same query."""
    concurrency_limit = NullIf(Coalesce(Cast("max_concurrent_renders", FloatField()),
                                        Value(float(settings.PLAN_MAX_CONCURRENT_RENDERS))), Value(0.0))
    return qs.annotate(in_flight=Count("renders", filter=in_flight_q("renders__"), distinct=True)).annotate(
        in_flight_fraction=Cast("in_flight", FloatField()) / concurrency_limit)
