"""Team, membership and invitation pages: thin, every write goes through accounts.services."""
from __future__ import annotations

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.access import team_object_or_404, teams_of
from accounts.adapter import PENDING_INVITATION_KEY
from accounts.forms import InvitationForm, RoleForm, TeamForm, role_choices
from accounts.models import Invitation, Membership
from accounts.roles import ROLE_LABELS


def _home_url() -> str:
    try:
        return reverse("dashboard")
    except NoReverseMatch:
        return reverse("team_settings")


def _next_or(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


def _error_text(exc: ValidationError | PermissionDenied) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or _("You are not allowed to do this.")


def _forbidden(request, exc: PermissionDenied):
    """A refused action is a 403 page that says why (not a bare error), so people know whom to ask."""
    return render(request, "accounts/forbidden.html", {"message": _error_text(exc)}, status=403)


@login_required
@require_POST
def team_switch(request):
    team_id = request.POST.get("team", "")
    if not team_id.isdigit():
        raise Http404("Not found")
    # Another team's id is a 404, exactly like an id that does not exist.
    team = get_object_or_404(teams_of(request.user), pk=int(team_id))
    services.current_team_set(session=request.session, user=request.user, team=team)
    return redirect(_next_or(request, _home_url()))


@login_required
def team_create(request):
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        team = services.team_create(name=form.cleaned_data["name"], owner=request.user)
        services.current_team_set(session=request.session, user=request.user, team=team)
        messages.success(request, _("Team %(team)s created. Invite your colleagues below.") % {"team": team.name})
        return redirect("team_settings")
    return render(request, "accounts/team_create.html", {"form": form})


@login_required
def team_settings(request):
    membership = request.membership
    if not membership:
        messages.info(request, _("You are not in a team yet. Create one to start."))
        return redirect("team_create")
    team = membership.team
    rename_form = TeamForm(request.POST or None, initial={"name": team.name}, prefix="team")
    if request.method == "POST":
        if not membership.can("team.rename"):
            raise PermissionDenied(_("Your role in this team does not allow this."))
        if rename_form.is_valid():
            services.team_rename(actor=request.user, team=team, name=rename_form.cleaned_data["name"])
            messages.success(request, _("Team renamed."))
            return redirect("team_settings")
    members = list(selectors.team_members(team=team))
    grantable = role_choices(membership.role)
    return render(request, "accounts/team_settings.html", {
        "team": team,
        "membership": membership,
        "members": members,
        "owner_count": sum(m.role == "owner" for m in members),
        "invitations": selectors.invitations_pending(team=team) if membership.can("member.invite") else [],
        "invite_form": InvitationForm(actor_role=membership.role),
        "rename_form": rename_form,
        "role_choices": grantable,
        "role_labels": ROLE_LABELS,
        "invitation_days": settings.INVITATION_DAYS,
    })


@login_required
@require_POST
def member_role(request, pk: int):
    target = team_object_or_404(Membership.objects.select_related("team", "user"), actor=request.user, pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a valid role."))
        return redirect("team_settings")
    try:
        changed = services.membership_role_change(actor=request.user, membership=target, role=form.cleaned_data["role"])
    except PermissionDenied as exc:
        messages.error(request, _error_text(exc))
        return _forbidden(request, exc)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("%(user)s is now %(role)s.") % {"user": target.user, "role": ROLE_LABELS[target.role]}
                         + _keys_revoked_text(changed.revoked_keys))
    return redirect("team_settings")


def _keys_revoked_text(keys) -> str:
    if not keys:
        return ""
    return " " + ngettext("The API key they created was revoked.", "The %(n)d API keys they created were revoked.",
                          len(keys)) % {"n": len(keys)}


@login_required
@require_POST
def member_remove(request, pk: int):
    target = team_object_or_404(Membership.objects.select_related("team", "user"), actor=request.user, pk=pk)
    leaving = target.user_id == request.user.pk
    try:
        revoked = services.membership_remove(actor=request.user, membership=target)
    except PermissionDenied as exc:
        return _forbidden(request, exc)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("team_settings")
    if leaving:
        messages.success(request, _("You left %(team)s.") % {"team": target.team.name})
        return redirect(_home_url())
    messages.success(request, _("%(user)s was removed from the team.") % {"user": target.user} + _keys_revoked_text(revoked))
    return redirect("team_settings")


@login_required
@require_POST
def invitation_create(request):
    membership = request.membership
    if not membership:
        raise Http404("Not found")
    if not membership.can("member.invite"):
        return _forbidden(request, PermissionDenied(_("Your role in this team does not allow this.")))
    form = InvitationForm(request.POST, actor_role=membership.role)
    if form.is_valid():
        try:
            invitation, _token = services.invitation_create(
                actor=request.user, team=membership.team, email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                base_url=request.build_absolute_uri("/"), language=get_language(),
            )
        except PermissionDenied as exc:
            return _forbidden(request, exc)
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, _("Invitation sent to %(email)s.") % {"email": invitation.email})
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    return redirect("team_settings")


@login_required
@require_POST
def invitation_revoke(request, pk: int):
    invitation = team_object_or_404(Invitation.objects.select_related("team"), actor=request.user, pk=pk)
    try:
        services.invitation_revoke(actor=request.user, invitation=invitation)
    except PermissionDenied as exc:
        return _forbidden(request, exc)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("Invitation to %(email)s withdrawn.") % {"email": invitation.email})
    return redirect("team_settings")


_STATUS_BY_CODE = {"expired": 410, "revoked": 410, "accepted": 410, "wrong_user": 403, "already_member": 409}


def invitation_accept(request, token: str):
    """The link from the invitation email. Anyone holding it may see which team invites them."""
    invitation = selectors.invitation_by_token(token=token)
    if invitation is None:
        raise Http404("Not found")
    context = {"invitation": invitation, "token": token, "role_label": ROLE_LABELS.get(invitation.role, invitation.role)}
    try:
        services.invitation_check(invitation=invitation, user=request.user)
    except ValidationError as exc:
        request.session.pop(PENDING_INVITATION_KEY, None)
        context["error"] = _error_text(exc)
        return render(request, "accounts/invitation_accept.html", context, status=_STATUS_BY_CODE.get(exc.code, 400))

    if not request.user.is_authenticated:
        # Signing up with the invited address needs no extra verification: the link proves it.
        request.session[PENDING_INVITATION_KEY] = token
        get_adapter(request).stash_verified_email(request, invitation.email)
        return render(request, "accounts/invitation_accept.html", context)

    if request.method == "POST":
        try:
            membership = services.invitation_accept(token=token, user=request.user)
        except ValidationError as exc:
            context["error"] = _error_text(exc)
            return render(request, "accounts/invitation_accept.html", context, status=_STATUS_BY_CODE.get(exc.code, 400))
        request.session.pop(PENDING_INVITATION_KEY, None)
        services.current_team_set(session=request.session, user=request.user, team=membership.team)
        messages.success(request, _("Welcome to %(team)s!") % {"team": membership.team.name})
        return redirect(_home_url())
    return render(request, "accounts/invitation_accept.html", context)
