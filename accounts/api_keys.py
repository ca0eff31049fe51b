"""Per-team API keys: services, lookup and the DRF authentication class.

A key is `mp_` + 43 random url-safe characters (256 bits). Only its SHA-256 is stored; the first
eleven characters ("mp_" + 8) stay visible so people can tell their keys apart.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from accounts.models import ApiKey, Team, token_hash
from accounts.roles import ADMIN
from accounts.tokens import object_for_token, revoke_once

# Only admins create keys, so a key acts with the admin role's content rights (upload, delete
# templates, create/cancel jobs, share). No endpoint of the API manages members or keys.
API_KEY_ROLE = ADMIN
PREFIX_LENGTH = len(ApiKey.PREFIX) + 8
# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def apikey_create(*, team: Team, name: str, created_by=None) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext key, which is never retrievable again."""
    plaintext = ApiKey.PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        team=team, name=name.strip()[:100] or "API key", prefix=plaintext[:PREFIX_LENGTH],
        key_hash=token_hash(plaintext), created_by=created_by,
    )
    return key, plaintext


def apikey_revoke(*, key: ApiKey, reason: str = "") -> ApiKey:
    if key.revoked_at is None and reason:
        key.revoked_reason = reason
        key.save(update_fields=["revoked_reason"])
    return revoke_once(key)


def apikeys_revoke_created_by(*, team_id, user_id, reason: str) -> list[ApiKey]:
    """Revoke the team's active keys that `user_id` created: a key must not outlive its
    creator's right to create it (removed from the team, or no longer an admin)."""
    keys = list(ApiKey.objects.filter(team_id=team_id, created_by_id=user_id, revoked_at__isnull=True))
    for key in keys:
        apikey_revoke(key=key, reason=reason)
    return keys


def apikey_for_plaintext(plaintext: str) -> ApiKey | None:
    """The active key with this plaintext, else None."""
    if not plaintext or not plaintext.startswith(ApiKey.PREFIX):
        return None
    key = object_for_token(ApiKey.objects.select_related("team"), plaintext, field="key_hash")
    if key is None or not key.is_active:
        return None
    return key


def apikey_touch(*, key: ApiKey, now=None) -> None:
    now = now or timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def apikeys_for_team(*, team: Team):
    return ApiKey.objects.filter(team=team).select_related("created_by").order_by("revoked_at", "-created")


class ApiKeyUser(AnonymousUser):
    """request.user for key requests: not a person, so never is_authenticated as one; the team
    comes from request.auth (the ApiKey)."""

    def __init__(self, key: ApiKey):
        super().__init__()
        self.api_key = key

    def __str__(self):
        return f"API key {self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer mp_...`. Unknown, malformed and revoked keys are all a 401."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if not parts or parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header: use 'Bearer <key>'."))
        key = apikey_for_plaintext(parts[1])
        if key is None:
            raise exceptions.AuthenticationFailed(_("Unknown or revoked API key."))
        # A suspended team's key still reads; writes are refused by the quota services.
        apikey_touch(key=key)
        return ApiKeyUser(key), key

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) with a WWW-Authenticate challenge.
        return 'Bearer realm="api"'
