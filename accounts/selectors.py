"""Reads for teams, memberships and invitations, always scoped to a team or a user."""
from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Invitation, Membership, Team
from accounts.tokens import object_for_token


def memberships_of_user(*, user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def team_members(*, team: Team) -> QuerySet[Membership]:
    return Membership.objects.filter(team=team).select_related("user").order_by("created", "user__email")


def invitations_pending(*, team: Team) -> QuerySet[Invitation]:
    return (
        Invitation.objects.filter(team=team, accepted_at=None, revoked_at=None, expires_at__gt=timezone.now())
        .select_related("invited_by")
        .order_by("-created")
    )


def invitation_by_token(*, token: str) -> Invitation | None:
    return object_for_token(Invitation.objects.select_related("team", "invited_by"), token)
