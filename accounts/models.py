from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.roles import ROLES, role_can

# The render priorities, lowest to highest: the one list. A plan's priority ceiling of
# "default" allows "low" and "default"; the dispatcher serves them in reverse order; the render
# queues (settings.RENDER_QUEUES) and Job.Priority carry the same names (tests/jobs/test_priorities.py).
PRIORITIES = ("low", "default", "high")

def token_hash(token: str) -> str:
    """Tokens (invitations, API keys, share links) are stored only as their SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


class EmailUserManager(UserManager):
    def _create_user(self, username, email, password, **extra_fields):
        username = username or email
        return super()._create_user(username, email, password, **extra_fields)

    def create_user(self, username=None, email=None, password=None, **extra_fields):
        return super().create_user(username or email, email, password, **extra_fields)

    def create_superuser(self, username=None, email=None, password=None, **extra_fields):
        return super().create_superuser(username or email, email, password, **extra_fields)


class User(AbstractUser):
    """A person. Logs in with email; `username` mirrors the email for Django's admin."""

    email = models.EmailField(_("email address"), unique=True)
    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True, choices=settings.LANGUAGES)

    objects = EmailUserManager()

    def save(self, *args, **kwargs):
        if not self.username:
            self.username = self.email
        super().save(*args, **kwargs)

    def __str__(self):
        return self.display_name or self.email


class Team(models.Model):
    """The tenant: every row of the platform belongs to one team."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    created = models.DateTimeField(default=timezone.now)
    suspended = models.BooleanField(_("suspended"), default=False)

    # Plan: a null field falls back to the setting of the same name (PLAN_*/..._MAX_...).
    storage_bytes_limit = models.BigIntegerField(null=True, blank=True)
    render_minutes_limit = models.FloatField(null=True, blank=True)
    max_concurrent_renders = models.PositiveIntegerField(null=True, blank=True)
    template_max_bytes = models.BigIntegerField(null=True, blank=True)
    template_max_seconds = models.FloatField(null=True, blank=True)
    audio_max_seconds = models.FloatField(null=True, blank=True)
    audio_max_bytes = models.BigIntegerField(null=True, blank=True)
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    priority_ceiling = models.CharField(max_length=10, blank=True, choices=[(p, p) for p in PRIORITIES])

    # Usage, derived from the ledger and cached here inside the same transaction.
    storage_bytes_used = models.BigIntegerField(default=0)
    # Net render seconds of the calendar month `render_month_key` ("YYYY-MM"); another key = 0.
    render_seconds_month = models.FloatField(default=0)
    render_month_key = models.CharField(max_length=7, blank=True)

    webhook_url = models.URLField(_("default webhook URL"), blank=True, max_length=500)
    webhook_secret = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def plan(self, field: str):
        """The team's own value for a plan field, else the settings default."""
        defaults = {
            "storage_bytes_limit": settings.PLAN_STORAGE_BYTES,
            "render_minutes_limit": settings.PLAN_RENDER_MINUTES,
            "max_concurrent_renders": settings.PLAN_MAX_CONCURRENT_RENDERS,
            "template_max_bytes": settings.TEMPLATE_MAX_BYTES,
            "template_max_seconds": settings.TEMPLATE_MAX_SECONDS,
            "audio_max_seconds": settings.AUDIO_MAX_SECONDS,
            "audio_max_bytes": settings.AUDIO_MAX_BYTES,
            "retention_days": settings.PLAN_RETENTION_DAYS,
            "priority_ceiling": settings.PLAN_PRIORITY_CEILING,
        }
        value = getattr(self, field)
        return defaults[field] if value in (None, "") else value


class Membership(models.Model):
    ROLE_CHOICES = [(r, r) for r in ROLES]

    # Not a field: set by accounts.services.membership_role_change (the keys a demotion revoked).
    revoked_keys: list[ApiKey]

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=ROLE_CHOICES, default="member")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")]
        ordering = ["team__name", "user__email"]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.role})"

    def can(self, action: str) -> bool:
        return role_can(self.role, action)


def _invitation_expiry():
    return timezone.now() + timedelta(days=settings.INVITATION_DAYS)


class Invitation(models.Model):
    """An emailed invitation; the token is only stored hashed and expires."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.ROLE_CHOICES, default="member")
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=_invitation_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.email} → {self.team_id} ({self.role})"

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and not self.is_expired

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)


class ApiKey(models.Model):
    """A per-team API key: shown once, stored hashed, with a visible prefix to tell keys apart."""

    PREFIX = "mp_"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class RevokedReason(models.TextChoices):
        CREATOR_REMOVED = "creator_removed", _("revoked: the person who created it left the team")
        CREATOR_DEMOTED = "creator_demoted", _("revoked: the person who created it is no longer an admin")

    # Empty: revoked by hand (or not revoked).
    revoked_reason = models.CharField(max_length=20, choices=RevokedReason.choices, blank=True, default="")

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class UsageEntry(models.Model):
    """The usage ledger: every charge (+) and refund (-) is a row; usage is derived from it."""

    STORAGE = "storage_bytes"
    RENDER_SECONDS = "render_seconds"
    KIND_CHOICES = [(STORAGE, "storage bytes"), (RENDER_SECONDS, "render seconds")]

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="usage_entries")
    kind = models.CharField(max_length=20, choices=KIND_CHOICES)
    amount = models.FloatField()
    reason = models.CharField(max_length=40)  # e.g. template_upload, render_reserve, render_settle, grant
    job = models.ForeignKey("jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    render = models.ForeignKey("jobs.Render", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    note = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["team", "kind", "created"])]

    def __str__(self):
        return f"{self.kind} {self.amount:+g} ({self.reason})"
