from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.roles import OWNER, ROLE_LABELS, ROLES, role_can


def role_choices(actor_role: str | None) -> list[tuple[str, str]]:
    """The roles an actor may hand out: owner only by owners."""
    return [(r, ROLE_LABELS[r]) for r in ROLES if r != OWNER or role_can(actor_role, "owner.grant")]


class TeamForm(forms.Form):
    name = forms.CharField(label=_("Team name"), max_length=100)


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    role = forms.ChoiceField(label=_("Role"), initial="member")

    def __init__(self, *args, actor_role: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(actor_role)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=[(r, ROLE_LABELS[r]) for r in ROLES])
