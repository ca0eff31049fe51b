"""Quota enforcement and the usage ledger (writes). Every charge and refund is a UsageEntry row;
the cached figures on Team are updated inside the same transaction, under a row lock on the
team (select_for_update; on SQLite the IMMEDIATE transaction mode serialises writers).

Signatures are the contract used by jobs/services.py; see issue 6 for the full feature.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Team, UsageEntry


class QuotaExceeded(Exception):
    """Over a limit; `str()` says which limit, the current usage and the limit, for users."""

    def __init__(self, message: str, *, code: str, used: float, limit: float):
        super().__init__(message)
        self.code, self.used, self.limit = code, used, limit


def month_start(now=None):
    now = now or timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def render_seconds_used(*, team: Team, since=None) -> float:
    """Render seconds charged (net of refunds) since the start of this calendar month."""
    qs = UsageEntry.objects.filter(team=team, kind=UsageEntry.RENDER_SECONDS, created__gte=since or month_start())
    return float(qs.aggregate(s=Sum("amount"))["s"] or 0.0)


def storage_bytes_used(*, team: Team) -> int:
    qs = UsageEntry.objects.filter(team=team, kind=UsageEntry.STORAGE)
    return int(qs.aggregate(s=Sum("amount"))["s"] or 0)


def _locked(team: Team) -> Team:
    return Team.objects.select_for_update().get(pk=team.pk)


def usage_record(*, team: Team, kind: str, amount: float, reason: str, job=None, render=None, note: str = "") -> UsageEntry:
    """Append one ledger row and refresh the cached usage on the team row (same transaction)."""
    with transaction.atomic():
        locked = _locked(team)
        entry = UsageEntry.objects.create(team=locked, kind=kind, amount=amount, reason=reason, job=job, render=render, note=note)
        if kind == UsageEntry.STORAGE:
            locked.storage_bytes_used = storage_bytes_used(team=locked)
            locked.save(update_fields=["storage_bytes_used"])
            team.storage_bytes_used = locked.storage_bytes_used
        return entry


def storage_check(*, team: Team, incoming_bytes: int) -> None:
    """Raise QuotaExceeded if `incoming_bytes` more would pass the team's storage limit."""
    limit = team.plan("storage_bytes_limit")
    used = storage_bytes_used(team=team)
    if used + incoming_bytes > limit:
        raise QuotaExceeded(
            _("Storage limit reached: %(used)s of %(limit)s used, this upload needs %(need)s more.")
            % {"used": _fmt_bytes(used), "limit": _fmt_bytes(limit), "need": _fmt_bytes(incoming_bytes)},
            code="storage", used=used, limit=limit,
        )


def storage_charge(*, team: Team, nbytes: int, reason: str, job=None, render=None) -> UsageEntry:
    """Check and charge storage atomically (row lock on the team)."""
    with transaction.atomic():
        locked = _locked(team)
        storage_check(team=locked, incoming_bytes=nbytes)
        return usage_record(team=locked, kind=UsageEntry.STORAGE, amount=nbytes, reason=reason, job=job, render=render)


def render_seconds_reserve(*, team: Team, seconds: float, job=None, render=None) -> UsageEntry:
    """Reserve render seconds at enqueue; raises QuotaExceeded (nothing written) when over.

    Must be called inside the caller's transaction so a failure rolls back the whole job.
    """
    locked = _locked(team)
    if locked.suspended:
        raise QuotaExceeded(_("This team is suspended: new renders cannot start. Downloads still work."), code="suspended", used=0, limit=0)
    limit = float(locked.plan("render_minutes_limit")) * 60.0
    used = render_seconds_used(team=locked)
    if used + seconds > limit + 1e-6:
        raise QuotaExceeded(
            _("Render minutes for this month used up: %(used).1f of %(limit).1f minutes used, this batch needs %(need).1f more.")
            % {"used": used / 60, "limit": limit / 60, "need": seconds / 60},
            code="render_minutes", used=used, limit=limit,
        )
    return UsageEntry.objects.create(team=locked, kind=UsageEntry.RENDER_SECONDS, amount=seconds, reason="render_reserve", job=job, render=render)


def render_seconds_settle(*, render, actual_seconds: float) -> UsageEntry | None:
    """Settle a render's reservation: refund the difference (all of it for failed/cancelled)."""
    delta = actual_seconds - render.reserved_seconds
    if abs(delta) < 1e-9:
        return None
    return usage_record(team=render.team, kind=UsageEntry.RENDER_SECONDS, amount=delta, reason="render_settle", job=render.job, render=render)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
