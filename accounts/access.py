"""The one tenant-access helper. Every door (portal, API, websockets, media, admin-side
services) scopes through here: another team's object is a 404, never a 403 that confirms
it exists."""
from __future__ import annotations

from typing import TypeVar

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.http import Http404

from accounts.models import Membership, Team

M = TypeVar("M", bound=models.Model)


def teams_of(actor) -> models.QuerySet[Team]:
    """The teams an actor may read: a Team (API key) is itself; a user, their memberships."""
    if isinstance(actor, Team):
        return Team.objects.filter(pk=actor.pk)
    if not getattr(actor, "is_authenticated", False):
        return Team.objects.none()
    return Team.objects.filter(memberships__user=actor)


def team_scoped(model_or_qs, *, actor) -> models.QuerySet:
    """`model_or_qs` restricted to rows whose `team` the actor belongs to."""
    qs = model_or_qs if isinstance(model_or_qs, models.QuerySet) else model_or_qs._default_manager.all()
    return qs.filter(team__in=teams_of(actor))


def team_object_or_404(model_or_qs, *, actor, **lookup):
    """The object matching `lookup` if it belongs to one of the actor's teams, else Http404.

    Malformed ids (e.g. a non-UUID string) are a 404 too, not a 500.
    """
    try:
        return team_scoped(model_or_qs, actor=actor).get(**lookup)
    except (ObjectDoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("Not found") from None


def membership_for(user, team: Team) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(user=user, team=team).select_related("team").first()
