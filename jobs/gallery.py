"""The gallery's bulk actions on a team's finished videos: download as one zip, delete, share.
Each checks the person's role for the whole selection first (accounts.roles)."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from accounts.access import membership_for
from jobs.models import Render
from jobs.sharing import sharelink_create


def _check(*, team, user, action: str) -> None:
    membership = membership_for(user, team)
    if membership is None or not membership.can(action):
        raise PermissionDenied(_("Your role in this team does not allow this."))


def renders_delete(*, team, user, renders: list[Render]) -> int:
    """Delete the videos (storage freed, rows kept as "expired"); returns how many went."""
    from jobs.maintenance import render_expire

    _check(team=team, user=user, action="job.delete")
    deleted = 0
    for r in renders:
        before = Render.objects.filter(pk=r.pk, status=Render.Status.DONE).exists()
        render_expire(render=r, reason="deleted", note=f"deleted from the gallery by {user}"[:200])
        deleted += before and not Render.objects.filter(pk=r.pk, status=Render.Status.DONE).exists()
    return deleted


def renders_share(*, team, user, renders: list[Render]) -> list[tuple[Render, object, str]]:
    """One share link per video: [(render, link, token)] (the tokens exist only in this answer)."""
    _check(team=team, user=user, action="share.create")
    return [(r, *sharelink_create(team=team, created_by=user, render=r)) for r in renders]
