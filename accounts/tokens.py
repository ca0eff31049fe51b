"""The one way a secret token (invitation, API key, share link) is found and a token-bearing row
is revoked. Tokens are stored only as token_hash(token), so a lookup is an indexed equality on
a digest and no secret is ever compared byte by byte."""
from __future__ import annotations

from typing import TypeVar

from django.db import models
from django.utils import timezone

from accounts.models import token_hash

# Real tokens are under 60 characters; hashing megabytes sent by a stranger is wasted work.
MAX_TOKEN_LENGTH = 200

RevocableT = TypeVar("RevocableT", bound=models.Model)  # a model with a revoked_at field


def object_for_token(queryset: models.QuerySet, token: str, *, field: str = "token_hash"):
    """The row of `queryset` whose `field` holds the hash of `token`, else None."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return queryset.filter(**{field: token_hash(token)}).first()


def revoke_once(obj: RevocableT) -> RevocableT:
    """Set revoked_at the first time only: revoking again keeps the original moment."""
    if obj.revoked_at is None:
        obj.revoked_at = timezone.now()
        obj.save(update_fields=["revoked_at"])
    return obj
