"""Usage selectors (reads) over the team rows alone, for the admin console's team list.

What needs renders (the usage page, renders in flight) is jobs.usage: accounts sits below jobs.
"""
from __future__ import annotations

from django.conf import settings
from django.db.models import Case, Count, F, FloatField, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Coalesce, NullIf

from accounts.models import Team
from accounts.quotas import month_key

NEAR_LIMIT = 0.8
# The fractions teams_with_usage annotates; jobs adds its own (in_flight_fraction).
USAGE_FRACTIONS = ("storage_fraction", "minutes_fraction")


def teams_with_usage(qs: QuerySet[Team] | None = None) -> QuerySet[Team]:
    """Teams annotated with usage fractions from the cached figures (one query, for lists):
    storage_fraction, minutes_used, minutes_fraction, member_count."""
    qs = qs if qs is not None else Team.objects.all()
    # A limit of 0 (nothing allowed) gives a null fraction instead of a division by zero.
    storage_limit = NullIf(Coalesce(Cast("storage_bytes_limit", FloatField()), Value(float(settings.PLAN_STORAGE_BYTES))),
                           Value(0.0))
    minutes_limit = NullIf(Coalesce("render_minutes_limit", Value(float(settings.PLAN_RENDER_MINUTES))), Value(0.0))
    month_seconds = Case(When(render_month_key=month_key(), then=F("render_seconds_month")), default=Value(0.0),
                         output_field=FloatField())
    return qs.annotate(member_count=Count("memberships", distinct=True)).annotate(
        storage_fraction=Cast("storage_bytes_used", FloatField()) / storage_limit,
        minutes_used=month_seconds / 60.0,
        minutes_fraction=month_seconds / (minutes_limit * 60.0),
    )


def near_limit_q(fractions=USAGE_FRACTIONS) -> Q:
    """Teams at or over NEAR_LIMIT of any of the annotated `fractions`."""
    q = Q()
    for name in fractions:
        q |= Q(**{f"{name}__gte": NEAR_LIMIT})
    return q
