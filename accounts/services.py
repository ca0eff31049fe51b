"""Writes for users, teams, memberships and invitations.

Role rules come from accounts.roles only. A refused action raises PermissionDenied (the actor
is in the team but their role does not allow it); a broken business rule (last owner,
expired invitation, ...) raises ValidationError with a translated message and a `code`.
"""
from __future__ import annotations

import logging
import smtplib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts.api_keys import apikeys_revoke_created_by
from accounts.models import ApiKey, Invitation, Membership, Team, token_hash
from accounts.roles import OWNER, ROLES, role_can
from accounts.tokens import revoke_once

log = logging.getLogger(__name__)

User = get_user_model()


def _require(membership: Membership | None, action: str) -> Membership:
    if membership is None or not membership.can(action):
        raise PermissionDenied(_("Your role in this team does not allow this."))
    return membership


def _actor_membership(*, actor, team: Team) -> Membership | None:
    return Membership.objects.filter(user=actor, team=team).first()


def _unique_slug(name: str) -> str:
    base = (slugify(name) or "team")[:50]
    slug, n = base, 1
    while Team.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def team_create(*, name: str, owner, slug: str | None = None) -> Team:
    """A new team; its creator is its first owner."""
    name = name.strip()
    if not name:
        raise ValidationError(_("A team needs a name."), code="name")
    with transaction.atomic():
        team = Team.objects.create(name=name, slug=slug or _unique_slug(name))
        Membership.objects.create(team=team, user=owner, role=OWNER)
    return team


def team_rename(*, actor, team: Team, name: str) -> Team:
    _require(_actor_membership(actor=actor, team=team), "team.rename")
    name = name.strip()
    if not name:
        raise ValidationError(_("A team needs a name."), code="name")
    team.name = name
    team.save(update_fields=["name"])
    return team


# --- the last-owner rule: one definition, for the portal, the admin and every other door ----

def last_owner_check(*, owners_before, owners_after) -> None:
    """A team keeps at least one owner: a change that takes a team which has an owner to none
    raises ValidationError (code "last_owner"). Arguments: the owners' membership ids before and
    after the change."""
    if set(owners_before) and not set(owners_after):
        raise ValidationError(_("A team needs at least one owner. Make someone else owner first."), code="last_owner")


def _owners_after(owners: set, *, membership: Membership, role: str | None) -> set:
    """The owners once `membership` takes `role` (None: leaves the team)."""
    return owners | {membership.pk} if role == OWNER else owners - {membership.pk}


def membership_change_check(*, membership: Membership, role: str | None) -> None:
    """The last-owner rule for `membership` taking `role` (None: being removed), against the
    team's owners in the database (the admin's forms and delete checks)."""
    owners = set(Membership.objects.filter(team_id=membership.team_id, role=OWNER).values_list("pk", flat=True))
    last_owner_check(owners_before=owners, owners_after=_owners_after(owners, membership=membership, role=role))


def membership_is_last_owner(*, membership: Membership) -> bool:
    """True when removing `membership` would leave its team without an owner."""
    try:
        membership_change_check(membership=membership, role=None)
    except ValidationError:
        return True
    return False


def _memberships_locked(membership: Membership) -> tuple[list[Membership], Membership]:
    """The team's memberships, locked (inside the caller's transaction) so two concurrent
    demotions or removals cannot both pass the last-owner check, and `membership` as locked."""
    locked = list(Membership.objects.select_for_update().filter(team_id=membership.team_id))
    current = next((m for m in locked if m.pk == membership.pk), None)
    if current is None:  # removed meanwhile
        raise Http404("Not found")
    return locked, current


def membership_role_change(*, actor, membership: Membership, role: str) -> Membership:
    """Admins change roles; only owners grant or revoke owner; a team keeps at least one owner.

    Below admin, the API keys the member created are revoked (accounts.receivers, whatever the
    door); `membership.revoked_keys` lists them."""
    if role not in ROLES:
        raise ValidationError(_("Unknown role."), code="role")
    with transaction.atomic():
        locked, membership = _memberships_locked(membership)
        mine = _require(next((m for m in locked if m.user_id == actor.pk), None), "member.change_role")
        if OWNER in (role, membership.role) and not role_can(mine.role, "owner.grant"):
            raise PermissionDenied(_("Only an owner can grant or take away the owner role."))
        owners = {m.pk for m in locked if m.role == OWNER}
        last_owner_check(owners_before=owners, owners_after=_owners_after(owners, membership=membership, role=role))
        before = set(ApiKey.objects.filter(team_id=membership.team_id, created_by_id=membership.user_id,
                                           revoked_at__isnull=True).values_list("pk", flat=True))
        membership.role = role
        membership.save(update_fields=["role"])
        membership.revoked_keys = list(ApiKey.objects.filter(pk__in=before, revoked_at__isnull=False))
    return membership


def membership_remove(*, actor, membership: Membership) -> list:
    """Admins remove members (only owners remove owners); anyone may leave; never the last owner.

    Returns the API keys the member had created in the team, now revoked."""
    with transaction.atomic():
        locked, membership = _memberships_locked(membership)
        if membership.user_id != actor.pk:
            mine = _require(next((m for m in locked if m.user_id == actor.pk), None), "member.remove")
            if membership.role == OWNER and not role_can(mine.role, "owner.grant"):
                raise PermissionDenied(_("Only an owner can remove an owner."))
        owners = {m.pk for m in locked if m.role == OWNER}
        last_owner_check(owners_before=owners, owners_after=_owners_after(owners, membership=membership, role=None))
        revoked = apikeys_revoke_created_by(team_id=membership.team_id, user_id=membership.user_id,
                                            reason=ApiKey.RevokedReason.CREATOR_REMOVED)
        membership.delete()
    return revoked


def invitation_url(*, token: str, base_url: str | None = None) -> str:
    return (base_url or settings.SITE_URL).rstrip("/") + reverse("invitation_accept", args=[token])


def invitation_create(
    *, actor, team: Team, email: str, role: str = "member", base_url: str | None = None, language: str | None = None
) -> tuple[Invitation, str]:
    """Invite `email` to `team` and email them a link; returns (invitation, plain token).

    The token is only ever stored hashed, so the link in the email is its one copy. A new
    invitation to the same address replaces a pending one (a "resend").
    """
    email = User.objects.normalize_email(email.strip()).lower()
    if role not in ROLES:
        raise ValidationError(_("Unknown role."), code="role")
    mine = _require(_actor_membership(actor=actor, team=team), "member.invite")
    if role == OWNER and not role_can(mine.role, "owner.grant"):
        raise PermissionDenied(_("Only an owner can invite another owner."))
    if Membership.objects.filter(team=team, user__email__iexact=email).exists():
        raise ValidationError(_("%(email)s is already a member of this team.") % {"email": email}, code="already_member")
    token = Invitation.new_token()
    now = timezone.now()
    with transaction.atomic():
        Invitation.objects.filter(team=team, email__iexact=email, accepted_at=None, revoked_at=None).update(revoked_at=now)
        invitation = Invitation.objects.create(team=team, email=email, role=role, token_hash=token_hash(token), invited_by=actor)
    # Sent after the commit above; should a caller's outer transaction roll back, the link is a 404.
    try:
        _invitation_email_send(invitation=invitation, url=invitation_url(token=token, base_url=base_url), language=language)
    except (smtplib.SMTPException, OSError):
        log.exception("invitation email to %s could not be sent", email)
        revoke_once(invitation)
        raise ValidationError(_("The invitation email could not be sent; please try again."), code="email_failed") from None
    return invitation, token


def _invitation_email_send(*, invitation: Invitation, url: str, language: str | None) -> None:
    with translation.override(language or translation.get_language() or settings.LANGUAGE_CODE):
        context = {
            "invitation": invitation,
            "team": invitation.team,
            "inviter": invitation.invited_by,
            "url": url,
            "role": invitation.role,
            "days": settings.INVITATION_DAYS,
        }
        subject = render_to_string("accounts/email/invitation_subject.txt", context).strip()
        body = render_to_string("accounts/email/invitation_message.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email])


def invitation_check(*, invitation: Invitation, user=None) -> None:
    """Raise ValidationError (code: revoked, accepted, expired, wrong_user) when it cannot be accepted."""
    if invitation.revoked_at:
        raise ValidationError(_("This invitation was withdrawn. Ask the team for a new one."), code="revoked")
    if invitation.accepted_at:
        raise ValidationError(_("This invitation has already been used."), code="accepted")
    if invitation.is_expired:
        raise ValidationError(
            _("This invitation expired on %(date)s. Ask the team for a new one.")
            % {"date": timezone.localtime(invitation.expires_at).strftime("%Y-%m-%d %H:%M")},
            code="expired",
        )
    if user is not None and user.is_authenticated and not _user_owns_email(user, invitation.email):
        raise ValidationError(
            _("This invitation was sent to %(invited)s, but you are signed in as %(current)s. Sign in with the invited address.")
            % {"invited": invitation.email, "current": user.email},
            code="wrong_user",
        )


def _user_owns_email(user, email: str) -> bool:
    from allauth.account.models import EmailAddress

    if (user.email or "").lower() == email.lower():
        return True
    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


def invitation_accept(*, token: str, user) -> Membership:
    """Join the team of the invitation behind `token`. Raises Invitation.DoesNotExist for an unknown token."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().select_related("team").get(token_hash=token_hash(token))
        invitation_check(invitation=invitation, user=user)
        try:
            with transaction.atomic():
                membership = Membership.objects.create(team=invitation.team, user=user, role=invitation.role)
        except IntegrityError:
            raise ValidationError(_("You are already a member of %(team)s.") % {"team": invitation.team.name},
                                  code="already_member") from None
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        # The address received the link, so it is proven: spare the user a second verification.
        _email_mark_verified(user=user, email=invitation.email)
    return membership


def _email_mark_verified(*, user, email: str) -> None:
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=user, email__iexact=email, verified=False).update(verified=True)


def invitation_revoke(*, actor, invitation: Invitation) -> Invitation:
    _require(_actor_membership(actor=actor, team=invitation.team), "member.invite")
    if invitation.accepted_at:
        raise ValidationError(_("This invitation has already been used."), code="accepted")
    return revoke_once(invitation)


def current_team_set(*, session, user, team: Team) -> None:
    """Remember the team chosen in the switcher; only a team the user belongs to."""
    from accounts.middleware import SESSION_KEY

    if not Membership.objects.filter(user=user, team=team).exists():
        raise PermissionDenied(_("You are not a member of this team."))
    session[SESSION_KEY] = team.pk


def personal_team_create(*, user) -> Team:
    """The team a new user starts in, so the portal works right after signup."""
    who = (user.display_name or user.email.split("@")[0]).strip() or "My"
    return team_create(name=_("%(name)s's team") % {"name": who}, owner=user)


def demo_seed(*, email: str, password: str, team_name: str = "Demo", team_slug: str = "demo", admin: bool = False):
    """The demo login: a verified owner of team "Demo" (and, with `admin`, a superuser for
    /admin/). Safe to run any number of times."""
    from allauth.account.models import EmailAddress

    with transaction.atomic():
        user = User.objects.filter(email__iexact=email).first()
        created = user is None
        if user is None:
            user = User.objects.create_user(email=email, password=password, display_name="Demo")
        else:
            user.set_password(password)
            user.is_active = True
            user.save(update_fields=["password", "is_active"])
        if admin and not (user.is_staff and user.is_superuser):
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        address, _created = EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        if not (address.verified and address.primary):
            address.verified = address.primary = True
            address.save(update_fields=["verified", "primary"])
        team = Team.objects.filter(slug=team_slug).first() or Team.objects.create(name=team_name, slug=team_slug)
        Membership.objects.update_or_create(team=team, user=user, defaults={"role": OWNER})
    return user, team, created
