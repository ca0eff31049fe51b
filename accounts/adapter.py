"""allauth hooks: a new user gets a personal team unless they arrive through an invitation,
and a pending invitation brings them back to its accept page after signing in."""
from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.urls import NoReverseMatch, reverse

from accounts import services

# The plain invitation token, while its holder signs up or signs in (their own session only).
PENDING_INVITATION_KEY = "pending_invitation"


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit and not request.session.get(PENDING_INVITATION_KEY):
            services.personal_team_create(user=user)
        return user

    def get_signup_redirect_url(self, request):
        return self.get_login_redirect_url(request)

    def get_login_redirect_url(self, request):
        token = request.session.get(PENDING_INVITATION_KEY)
        if token:
            return reverse("invitation_accept", args=[token])
        try:
            return super().get_login_redirect_url(request)
        except NoReverseMatch:
            # LOGIN_REDIRECT_URL names the dashboard; until that page exists, the team page.
            return reverse("team_settings")
