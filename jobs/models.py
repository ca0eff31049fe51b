from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any, Self

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Team


def team_media_dir(team_id: int) -> str:
    """Every file of a team lives under MEDIA_ROOT/teams/<team id>/."""
    return f"teams/{team_id}"


def template_upload_to(instance: Template, filename: str) -> str:
    ext = (filename.rsplit(".", 1)[-1] if "." in filename else "mp4").lower()[:5]
    return f"{team_media_dir(instance.team_id)}/templates/{instance.id}/source.{ext}"


def template_poster_to(instance: Template, filename: str) -> str:
    return f"{team_media_dir(instance.team_id)}/templates/{instance.id}/poster.jpg"


def template_preview_to(instance: Template, filename: str) -> str:
    return f"{team_media_dir(instance.team_id)}/templates/{instance.id}/preview.mp4"


def job_audio_to(instance: Job, filename: str) -> str:
    ext = (filename.rsplit(".", 1)[-1] if "." in filename else "wav").lower()[:5]
    return f"{team_media_dir(instance.team_id)}/jobs/{instance.id}/audio.{ext}"


def error_text(code: str, fallback: str) -> str:
    """The user-facing sentence for an engine error code, in the active language; `fallback`
    (the engine's own sentence) for codes without one."""
    known = {
        "undecodable_media": _("A file of this render could not be decoded: it may be corrupt or truncated."),
        "no_face": _("No face was found in the template video."),
        "silent_audio": _("The audio is empty or silent, so there is no speech to lip-sync."),
    }
    return str(known[code]) if code in known else fallback


FITNESS_NOTES = {
    "never_open": _("The presenter's mouth never opens in this video, so open vowels will look drawn "
                    "rather than real. Record the presenter speaking, not silent or smiling."),
    "rarely_open": _("The presenter's mouth is open in very few frames. A clip where the presenter talks "
                     "naturally for 10 seconds or more renders better."),
    "no_teeth": _("The teeth are never visible, so open mouths will show no teeth. Record the presenter "
                  "speaking clearly, facing the camera, in good light."),
}


def fitness_texts(fitness: dict) -> list[str]:
    """The user-facing advice for a template's fitness note codes (lipsync.mouth_index), in
    the active language."""
    return [str(FITNESS_NOTES[c]) for c in (fitness or {}).get("notes", []) if c in FITNESS_NOTES]


class Template(models.Model):
    """A presenter video in a team's library."""

    class Prep(models.TextChoices):
        PENDING = "pending", _("waiting")
        RUNNING = "running", _("preparing")
        READY = "ready", _("ready")
        FAILED = "failed", _("failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(_("name"), max_length=200)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created = models.DateTimeField(default=timezone.now)

    file = models.FileField(upload_to=template_upload_to, max_length=300)
    original_filename = models.CharField(max_length=255, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)  # the same bytes twice = one template
    poster = models.ImageField(upload_to=template_poster_to, max_length=300, blank=True)
    # A small H.264 copy for browsers when the original cannot play there (e.g. HEVC); renders
    # always use the original.
    preview = models.FileField(upload_to=template_preview_to, max_length=300, blank=True)
    preview_size_bytes = models.BigIntegerField(default=0)  # charged to the team's storage too

    # Probe (PyAV): display size after rotation.
    duration = models.FloatField(default=0)
    fps = models.FloatField(default=0)
    variable_frame_rate = models.BooleanField(default=False)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    rotation = models.IntegerField(default=0)
    video_codec = models.CharField(max_length=40, blank=True)
    audio_codec = models.CharField(max_length=40, blank=True)
    has_audio = models.BooleanField(default=False)
    container = models.CharField(max_length=60, blank=True)

    # Preparation (face landmarks cache), run on the "prep" queue after upload.
    prep_status = models.CharField(max_length=10, choices=Prep.choices, default=Prep.PENDING)
    prep_error = models.TextField(blank=True)
    prep_face_fraction = models.FloatField(null=True, blank=True)
    # the engine's verdict on the template's mouths: {"ok", "notes": [codes], "open_share",
    # "teeth_share", "speech_seconds", "speaker_adapted"}; {} until prepared
    prep_fitness = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["team", "-created"])]

    def __str__(self):
        return self.name

    @property
    def fitness_texts(self) -> list[str]:
        return fitness_texts(self.prep_fitness)


class Job(models.Model):
    """A batch: one audio recording rendered onto N templates (one Render each)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        PARTIAL = "partial", _("finished with failures")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    FINAL = (Status.DONE, Status.PARTIAL, Status.FAILED, Status.CANCELLED)

    class Priority(models.TextChoices):
        HIGH = "high", _("high")
        DEFAULT = "default", _("normal")
        LOW = "low", _("low")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    title = models.CharField(_("title"), max_length=200, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.DEFAULT)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)

    audio = models.FileField(upload_to=job_audio_to, max_length=300)
    audio_filename = models.CharField(max_length=255, blank=True)
    audio_size_bytes = models.BigIntegerField(default=0)
    audio_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    audio_duration = models.FloatField(default=0)
    audio_info = models.JSONField(default=dict, blank=True)

    webhook_url = models.URLField(max_length=500, blank=True)

    created = models.DateTimeField(default=timezone.now, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["team", "-created"])]

    def __str__(self):
        return self.title or gettext("Batch %(id)s") % {"id": str(self.id)[:8]}


class Render(models.Model):
    """One output video: the job's audio on one template."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        PREPARING = "preparing", _("preparing")
        RENDERING = "rendering", _("rendering")
        ENCODING = "encoding", _("encoding")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")
        EXPIRED = "expired", _("expired")

    ACTIVE = (Status.PREPARING, Status.RENDERING, Status.ENCODING)
    FINAL = (Status.DONE, Status.FAILED, Status.CANCELLED, Status.EXPIRED)

    # The one table of the render state machine: from status -> the statuses it may go to.
    # jobs.services.render_transition is the only writer of `status` and refuses anything else.
    TRANSITIONS = {
        # claimed by a worker; cancelled by a person; failed before it ran
        Status.QUEUED: {Status.PREPARING, Status.CANCELLED, Status.FAILED},
        # stage changes (progress), the endings, and back to the queue (retry, shutdown, abandoned)
        Status.PREPARING: {*ACTIVE, Status.DONE, Status.FAILED, Status.CANCELLED, Status.QUEUED},
        Status.RENDERING: {*ACTIVE, Status.DONE, Status.FAILED, Status.CANCELLED, Status.QUEUED},
        Status.ENCODING: {*ACTIVE, Status.DONE, Status.FAILED, Status.CANCELLED, Status.QUEUED},
        Status.DONE: {Status.EXPIRED},  # retention purge, deleted from the gallery
        Status.FAILED: {Status.QUEUED},  # retried
        Status.CANCELLED: {Status.QUEUED},  # retried
        Status.EXPIRED: set(),
    }

    # Not a field: the status as last loaded or saved, which save() compares against.
    _saved_status: str | None

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="renders")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="renders")  # = job.team, for scoping
    template = models.ForeignKey(Template, on_delete=models.SET_NULL, null=True, related_name="renders")
    template_name = models.CharField(max_length=200, blank=True)  # kept if the template is deleted

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0)
    stage = models.CharField(max_length=20, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)  # for users, in plain words
    log_path = models.CharField(max_length=300, blank=True)  # relative to MEDIA_ROOT

    output = models.FileField(max_length=300, blank=True)
    output_size_bytes = models.BigIntegerField(default=0)
    output_duration = models.FloatField(default=0)
    quality = models.JSONField(default=dict, blank=True)  # face_fraction, sync_score, sync_lag, sync_z
    timings = models.JSONField(default=dict, blank=True)

    attempts = models.PositiveIntegerField(default=0)
    worker_name = models.CharField(max_length=200, blank=True)
    rq_job_id = models.CharField(max_length=100, blank=True)
    queue_name = models.CharField(max_length=20, blank=True)
    reserved_seconds = models.FloatField(default=0)  # render seconds reserved in the ledger

    created = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created", "template_name"]
        indexes = [models.Index(fields=["team", "status"])]

    def __str__(self):
        return f"{self.template_name} ({self.status})"

    def save(self, *args, **kwargs):
        # A guard for the one writer: a saved row's status changes only through
        # jobs.services.render_transition (a conditional update), never by save().
        saved = getattr(self, "_saved_status", None)
        if not self._state.adding and saved is not None and self.status != saved:
            raise RenderStatusError(f"render {self.pk}: status {saved!r} -> {self.status!r} must go through "
                                    "jobs.services.render_transition, not save()")
        super().save(*args, **kwargs)
        self._saved_status = self.status

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def has_video(self) -> bool:
        """Finished with its output file in place: what players, downloads, zips and share
        links show."""
        return self.status == self.Status.DONE and bool(self.output)

    @classmethod
    def allowed_from(cls, to: str) -> set[str]:
        """The statuses a render may be in to move to `to`."""
        return {source for source, targets in cls.TRANSITIONS.items() if to in targets}

    @classmethod
    def from_db(cls, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any) -> Self:
        # **kwargs: newer Django passes more keywords (fetch_mode); each is handed on unchanged.
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._saved_status = instance.__dict__.get("status")  # what save() compares against
        return instance

    def refresh_from_db(self, *args, **kwargs):
        super().refresh_from_db(*args, **kwargs)
        self._saved_status = self.__dict__.get("status")


class RenderStatusError(RuntimeError):
    """A status change that bypassed the render state machine (a programming error)."""


class ShareLink(models.Model):
    """A public link to one render or a whole job. The token is stored only hashed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="share_links")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, null=True, blank=True, related_name="share_links")
    render = models.ForeignKey(Render, on_delete=models.CASCADE, null=True, blank=True, related_name="share_links")
    token_hash = models.CharField(max_length=64, unique=True)
    token_prefix = models.CharField(max_length=8)
    password_hash = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    views = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"share link {self.token_prefix}…"


class WebhookDelivery(models.Model):
    """One webhook event and its delivery attempts (visible to the team)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="webhook_deliveries")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, null=True, blank=True, related_name="webhook_deliveries")
    event = models.CharField(max_length=40)
    url = models.URLField(max_length=500)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.JSONField(default=list)  # [{"at", "status_code", "duration_ms", "error"}]
    created = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.event} -> {self.url} ({self.status})"
