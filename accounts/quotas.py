"""Quota enforcement and the usage ledger (writes). Every charge and refund is a UsageEntry row;
the cached figures on Team are updated inside the same transaction, under a row lock on the
team (select_for_update; on SQLite the IMMEDIATE transaction mode serialises writers).

The plan (limits) of a team is `Team.plan(field)`: its own override, else the setting.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import PRIORITIES, Team, UsageEntry


class QuotaExceeded(Exception):
    """Over a limit; `str()` says which limit, the current usage and the limit, for users."""

    def __init__(self, message: str, *, code: str, used: float, limit: float):
        super().__init__(message)
        self.code, self.used, self.limit = code, used, limit


# --- Plan ---------------------------------------------------------------------------------

def plan_priorities(*, team: Team) -> list[str]:
    """The render queues this team may use, lowest first (up to its priority ceiling)."""
    ceiling = team.plan("priority_ceiling")
    if ceiling not in PRIORITIES:
        ceiling = "default"
    return list(PRIORITIES[: PRIORITIES.index(ceiling) + 1])


def plan_priority_allowed(*, team: Team, priority: str) -> bool:
    return priority in plan_priorities(team=team)


def render_expiry_for(*, team: Team, finished: datetime) -> datetime:
    """When a render output finished at `finished` is deleted by the retention purge."""
    return finished + timedelta(days=int(team.plan("retention_days")))


def upload_max_bytes(*, team: Team | None, kind: str) -> int:
    """Largest single file of `kind` ("template" or "audio") this team may upload."""
    if kind == "audio":
        return int(team.plan("audio_max_bytes") if team else settings.AUDIO_MAX_BYTES)
    return int(team.plan("template_max_bytes") if team else settings.TEMPLATE_MAX_BYTES)


# --- Reading usage ------------------------------------------------------------------------

def month_start(now=None):
    now = timezone.localtime(now or timezone.now())
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_key(now=None) -> str:
    return month_start(now).strftime("%Y-%m")


def render_seconds_used(*, team: Team, since=None) -> float:
    """Render seconds charged (net of refunds and grants) since the start of this calendar month."""
    qs = UsageEntry.objects.filter(team=team, kind=UsageEntry.RENDER_SECONDS, created__gte=since or month_start())
    return float(qs.aggregate(s=Sum("amount"))["s"] or 0.0)


def storage_bytes_used(*, team: Team) -> int:
    qs = UsageEntry.objects.filter(team=team, kind=UsageEntry.STORAGE)
    return int(qs.aggregate(s=Sum("amount"))["s"] or 0)


# --- Writing the ledger -------------------------------------------------------------------

def _locked(team: Team) -> Team:
    return Team.objects.select_for_update().get(pk=team.pk)


def _refresh_cache(*, locked: Team, team: Team, kind: str) -> None:
    """Recompute the cached usage from the ledger (same transaction, team row locked)."""
    if kind == UsageEntry.STORAGE:
        locked.storage_bytes_used = storage_bytes_used(team=locked)
        locked.save(update_fields=["storage_bytes_used"])
        team.storage_bytes_used = locked.storage_bytes_used
    else:
        locked.render_seconds_month = render_seconds_used(team=locked)
        locked.render_month_key = month_key()
        locked.save(update_fields=["render_seconds_month", "render_month_key"])
        team.render_seconds_month, team.render_month_key = locked.render_seconds_month, locked.render_month_key


def _append(*, locked: Team, team: Team, kind: str, amount: float, reason: str, job=None, render=None, note: str = "",
            created=None) -> UsageEntry:
    """Write one ledger row and refresh the cached usage; the caller holds the team row lock."""
    entry = UsageEntry.objects.create(
        team=locked, kind=kind, amount=amount, reason=reason, job=job, render=render, note=note[:200],
        **({"created": created} if created else {}),
    )
    _refresh_cache(locked=locked, team=team, kind=kind)
    return entry


def usage_record(*, team: Team, kind: str, amount: float, reason: str, job=None, render=None, note: str = "",
                 created=None) -> UsageEntry:
    """Append one ledger row and refresh the cached usage on the team row (same transaction,
    the team row locked once)."""
    with transaction.atomic():
        return _append(locked=_locked(team), team=team, kind=kind, amount=amount, reason=reason, job=job, render=render,
                       note=note, created=created)


def storage_check(*, team: Team, incoming_bytes: int) -> None:
    """Raise QuotaExceeded if `incoming_bytes` more would pass the team's storage limit."""
    limit = team.plan("storage_bytes_limit")
    used = storage_bytes_used(team=team)
    if used + incoming_bytes > limit:
        raise QuotaExceeded(
            _("Storage limit reached: %(used)s of %(limit)s used, this upload needs %(need)s more.")
            % {"used": format_bytes(used), "limit": format_bytes(limit), "need": format_bytes(incoming_bytes)},
            code="storage", used=used, limit=limit,
        )


def storage_charge(*, team: Team, nbytes: int, reason: str, job=None, render=None) -> UsageEntry:
    """Check and charge storage atomically (one row lock on the team for both)."""
    with transaction.atomic():
        locked = _locked(team)
        storage_check(team=locked, incoming_bytes=nbytes)
        return _append(locked=locked, team=team, kind=UsageEntry.STORAGE, amount=nbytes, reason=reason, job=job, render=render)


def storage_record(*, team: Team, nbytes: int, reason: str, note: str = "") -> UsageEntry | None:
    """Charge bytes the platform made itself from an upload it accepted (a template's web
    preview): recorded even past the limit, since refusing would leave the upload unplayable;
    the next upload is then refused as usual."""
    if nbytes <= 0:
        return None
    return usage_record(team=team, kind=UsageEntry.STORAGE, amount=nbytes, reason=reason, note=note)


def storage_release(*, team: Team, nbytes: int, reason: str, job=None, render=None, note: str = "") -> UsageEntry | None:
    """Free storage (a negative row), e.g. a deleted template or an expired output."""
    if nbytes <= 0:
        return None
    return usage_record(team=team, kind=UsageEntry.STORAGE, amount=-abs(nbytes), reason=reason, job=job, render=render, note=note)


def storage_charged_for(*, render=None, job=None) -> int:
    """Net storage bytes the ledger holds for one render or job (what releasing it frees)."""
    qs = UsageEntry.objects.filter(kind=UsageEntry.STORAGE)
    qs = qs.filter(render=render) if render is not None else qs.filter(job=job, render__isnull=True)
    return int(qs.aggregate(s=Sum("amount"))["s"] or 0)


def render_seconds_reserve(*, team: Team, seconds: float, job=None, render=None) -> UsageEntry:
    """Reserve render seconds at enqueue; raises QuotaExceeded (nothing written) when over.

    Call it inside the caller's transaction so a failure rolls back the whole job; the row lock
    on the team is held until that transaction commits, so concurrent enqueues queue up here.
    """
    with transaction.atomic():
        locked = _locked(team)
        if locked.suspended:
            raise QuotaExceeded(
                _("This team is suspended: new renders cannot start. Existing videos can still be downloaded."),
                code="suspended", used=0, limit=0,
            )
        limit = float(locked.plan("render_minutes_limit")) * 60.0
        used = render_seconds_used(team=locked)
        if used + seconds > limit + 1e-6:
            raise QuotaExceeded(
                _("Render minutes for this month used up: %(used).1f of %(limit).1f minutes used, this batch needs %(need).1f more.")
                % {"used": used / 60, "limit": limit / 60, "need": seconds / 60},
                code="render_minutes", used=used, limit=limit,
            )
        return _append(locked=locked, team=team, kind=UsageEntry.RENDER_SECONDS, amount=seconds, reason="render_reserve",
                       job=job, render=render)


def render_seconds_settle(*, render, actual_seconds: float) -> UsageEntry | None:
    """Settle a render's reservation: refund the difference (pass 0 for failed/cancelled).

    Safe to call twice: it settles against what the ledger holds for the render, not against
    `reserved_seconds`, so a second call writes nothing. A reservation made in an earlier month
    is settled in that month, so a refund never turns into free minutes of the next one.
    """
    with transaction.atomic():
        # Locked before the ledger is read, so two concurrent settles cannot both refund.
        locked = _locked(render.team)
        rows = UsageEntry.objects.filter(render=render, kind=UsageEntry.RENDER_SECONDS)
        charged = float(rows.aggregate(s=Sum("amount"))["s"] or 0.0)
        own = rows.filter(reason="render_reserve").order_by("created").first()
        shared = UsageEntry.objects.filter(job_id=render.job_id, render__isnull=True, kind=UsageEntry.RENDER_SECONDS,
                                           reason="render_reserve").order_by("created").first()
        if shared is not None or own is None:
            # A batch reserves once for all its renders (a row without render): this render's
            # share of it is its reserved_seconds. A retry adds its own row on top.
            charged += float(render.reserved_seconds or 0.0)
        delta = float(actual_seconds) - charged
        if abs(delta) < 1e-6:
            return None
        first = min((r for r in (own, shared) if r is not None), key=lambda r: r.created, default=None)
        reserved_at = first.created if first is not None else render.created
        created = reserved_at + timedelta(microseconds=1) if reserved_at < month_start() else None
        return _append(locked=locked, team=render.team, kind=UsageEntry.RENDER_SECONDS, amount=delta,
                       reason="render_settle", job=render.job, render=render, created=created)


def render_minutes_grant(*, team: Team, minutes: float, note: str = "", by=None) -> UsageEntry:
    """Extra render minutes for this month: a negative render_seconds row "grant"."""
    if minutes <= 0:
        raise ValueError("minutes must be positive")
    who = f"{by}: " if by is not None else ""
    return usage_record(team=team, kind=UsageEntry.RENDER_SECONDS, amount=-float(minutes) * 60.0, reason="grant",
                        note=(who + note))


def team_suspend_set(*, team: Team, suspended: bool) -> Team:
    """Suspend or resume a team: a suspended team cannot start renders but can still download."""
    Team.objects.filter(pk=team.pk).update(suspended=suspended)
    team.suspended = suspended
    return team


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


