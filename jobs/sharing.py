"""Share links: public, revocable links to one render or a whole job (services and selectors).

The token (192 bits, url-safe) is returned once by sharelink_create and stored only as its
SHA-256; a visit finds the link by hashing what it was given, so no token is ever compared.
"""
from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta
from enum import Enum

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.db import models
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Team, token_hash
from accounts.tokens import object_for_token, revoke_once
from jobs.models import Job, Render, ShareLink


class ShareLinkError(ValueError):
    """A share link cannot be made as asked; str() is for users."""


class ShareState(Enum):
    OK = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def sharelink_create(*, team: Team, created_by=None, job: Job | None = None, render: Render | None = None,
                     expires_at: datetime | None = None, password: str = "") -> tuple[ShareLink, str]:
    """Create a link for exactly one of `job` or `render` (both of `team`); returns (link, token)."""
    if job is not None and render is None:
        target_team_id = job.team_id
    elif render is not None and job is None:
        target_team_id = render.team_id
    else:
        raise ShareLinkError(_("A share link is for one render or one job."))
    if target_team_id != team.pk:
        raise ShareLinkError(_("That video belongs to another team."))
    if render is not None and render.status != Render.Status.DONE:
        raise ShareLinkError(_("Only finished renders can be shared."))
    if expires_at is not None and expires_at <= timezone.now():
        raise ShareLinkError(_("The expiry must be in the future."))
    token = secrets.token_urlsafe(24)
    link = ShareLink.objects.create(
        team=team, job=job, render=render, token_hash=token_hash(token), token_prefix=token[:6],
        password_hash=make_password(password) if password else "", created_by=created_by, expires_at=expires_at,
    )
    return link, token


def sharelink_revoke(*, link: ShareLink) -> ShareLink:
    return revoke_once(link)


MAX_EXPIRY_DAYS = 365


def share_expiry_in(*, days: int | None, now=None) -> datetime | None:
    """When a link asked to last `days` days expires (capped at MAX_EXPIRY_DAYS); None (never)
    for no or a non-positive number of days."""
    if not days or days <= 0:
        return None
    return (now or timezone.now()) + timedelta(days=min(int(days), MAX_EXPIRY_DAYS))


def sharelink_for_token(token: str) -> ShareLink | None:
    return object_for_token(ShareLink.objects.select_related("job", "render", "render__template", "team"), token)


def sharelink_state(link: ShareLink, *, now=None) -> ShareState:
    now = now or timezone.now()
    if link.revoked_at is not None:
        return ShareState.REVOKED
    if link.expires_at is not None and link.expires_at <= now:
        return ShareState.EXPIRED
    return ShareState.OK


def sharelink_renders(link: ShareLink) -> list[Render]:
    """The finished videos a link shows: its render, or every done render of its job."""
    if link.render_id:
        render = link.render
        renders = [render] if render is not None and render.has_video else []
    else:
        job = link.job
        assert job is not None  # a link is for one render or one job (sharelink_create)
        renders = list(job.renders.filter(status=Render.Status.DONE).exclude(output="").select_related("template"))
    return renders


def sharelink_render_or_none(link: ShareLink, render_id) -> Render | None:
    for render in sharelink_renders(link):
        if str(render.pk) == str(render_id):
            return render
    return None


def sharelink_view_record(*, link: ShareLink) -> None:
    ShareLink.objects.filter(pk=link.pk).update(views=F("views") + 1)


def sharelink_check_password(link: ShareLink, password: str) -> bool:
    return bool(link.password_hash) and check_password(password, link.password_hash)


def _attempts_key(link: ShareLink, ip: str) -> str:
    return f"share-pw:{link.pk}:{ip}"


def _count_attempt(key: str) -> int:
    cache.add(key, 0, timeout=settings.SHARE_PASSWORD_WINDOW_SECONDS)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=settings.SHARE_PASSWORD_WINDOW_SECONDS)
        return 1


def sharelink_password_attempt(*, link: ShareLink, ip: str) -> bool:
    """Count one password attempt from `ip`; False once SHARE_PASSWORD_MAX_ATTEMPTS are used up
    from that address, or SHARE_PASSWORD_LINK_MAX_ATTEMPTS on the link from all addresses
    together, in the current window (the window starts at the first attempt). The per-link
    count holds however many addresses a guesser has."""
    per_ip = _count_attempt(_attempts_key(link, ip))
    per_link = _count_attempt(f"share-pw:{link.pk}:all")
    return per_ip <= settings.SHARE_PASSWORD_MAX_ATTEMPTS and per_link <= settings.SHARE_PASSWORD_LINK_MAX_ATTEMPTS


def sharelink_session_grant(session, link: ShareLink) -> None:
    """Remember in the visitor's session that they gave this link's password."""
    session[f"share-ok:{link.pk}"] = link.password_hash[-16:]


def sharelink_session_allows(session, link: ShareLink) -> bool:
    if not link.password_hash:
        return True
    remembered = session.get(f"share-ok:{link.pk}", "")
    return hmac.compare_digest(str(remembered), link.password_hash[-16:])


def share_links_for_team(*, team: Team, job: Job | None = None, render: Render | None = None) -> models.QuerySet[ShareLink]:
    """A team's links, optionally those of one job (its own and its renders') or one render."""
    qs = ShareLink.objects.filter(team=team).select_related("job", "render", "created_by")
    if job is not None:
        qs = qs.filter(models.Q(job=job) | models.Q(render__job=job))
    if render is not None:
        qs = qs.filter(render=render)
    return qs
