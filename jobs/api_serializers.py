"""The REST API's serializers: what jobs.api reads and answers, and the OpenAPI schema."""
from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs import selectors, sharing
from jobs.api_support import absolute_url
from jobs.models import Job, Render, ShareLink, Template


class TemplateSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    fitness = serializers.SerializerMethodField(
        help_text="The engine's verdict on the template's mouths once prepared: ok, note codes "
                  "(never_open, rarely_open, no_teeth) with advice in the request's language, the share "
                  "of open frames and of frames showing teeth, seconds of speech, whether the "
                  "engine adapted to this speaker, and the seconds of speech it needed for that "
                  "(adapt_min_seconds, when prepared).")

    class Meta:
        model = Template
        fields = ["id", "name", "tags", "created", "original_filename", "size_bytes", "duration", "fps",
                  "variable_frame_rate", "width", "height", "rotation", "video_codec", "has_audio",
                  "prep_status", "prep_error", "fitness", "url"]
        read_only_fields = fields

    def get_fitness(self, obj) -> dict | None:
        if not obj.prep_fitness:
            return None
        return {**obj.prep_fitness, "advice": obj.fitness_texts}

    def get_url(self, obj) -> str:
        return absolute_url(self.context["request"], "api_template_detail", obj.pk)


class TemplateUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The presenter video (mp4, mov, webm, ...).")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False)


class RenderSerializer(serializers.ModelSerializer):
    job_id = serializers.UUIDField(read_only=True)
    template_id = serializers.UUIDField(read_only=True, allow_null=True)
    download_url = serializers.SerializerMethodField()
    log_url = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    error_message = serializers.SerializerMethodField(
        help_text="The error in plain words, in the request's language (Accept-Language) when its code is known.")

    class Meta:
        model = Render
        fields = ["id", "job_id", "template_id", "template_name", "status", "progress", "stage", "error_code",
                  "error_message", "output_size_bytes", "output_duration", "quality", "timings", "attempts",
                  "created", "started", "finished", "expires_at", "url", "download_url", "log_url"]
        read_only_fields = fields

    def get_url(self, obj) -> str:
        return absolute_url(self.context["request"], "api_render_detail", obj.pk)

    def get_error_message(self, obj) -> str:
        return selectors.render_error_text(obj)

    def get_download_url(self, obj) -> str | None:
        if not obj.has_video:
            return None
        return absolute_url(self.context["request"], "api_render_download", obj.pk)

    def get_log_url(self, obj) -> str | None:
        return absolute_url(self.context["request"], "api_render_log", obj.pk) if obj.log_path else None


class JobSerializer(serializers.ModelSerializer):
    webhook_url = serializers.CharField(read_only=True, help_text="The job's own webhook URL; empty when the team default applies.")
    progress = serializers.SerializerMethodField()
    render_counts = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    zip_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "title", "status", "priority", "created", "started", "finished", "audio_filename",
                  "audio_duration", "audio_size_bytes", "webhook_url", "progress", "render_counts", "url", "zip_url"]
        read_only_fields = fields

    def get_progress(self, obj) -> float:
        return round(selectors.job_progress(obj), 4)

    def get_render_counts(self, obj) -> dict[str, int]:
        return selectors.render_status_counts(obj.renders.all())  # prefetched by jobs_for_team

    def get_url(self, obj) -> str:
        return absolute_url(self.context["request"], "api_job_detail", obj.pk)

    def get_zip_url(self, obj) -> str:
        return absolute_url(self.context["request"], "api_job_zip", obj.pk)


class JobDetailSerializer(JobSerializer):
    renders = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "renders"]
        read_only_fields = fields

    @extend_schema_field(RenderSerializer(many=True))
    def get_renders(self, obj) -> list:
        return RenderSerializer(selectors.renders_for_job(job=obj), many=True, context=self.context).data


class JobCreateSerializer(serializers.Serializer):
    audio = serializers.FileField(help_text="The recording (wav, mp3, m4a, ...).")
    template_ids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=100,
                                         help_text="Templates to render onto; repeat the field or separate by commas.")
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    priority = serializers.ChoiceField(choices=Job.Priority.choices, default=Job.Priority.DEFAULT)
    webhook_url = serializers.URLField(max_length=500, required=False, allow_blank=True)

    def to_internal_value(self, data):
        # Multipart clients often send "a,b,c" in one field; accept both spellings.
        if hasattr(data, "getlist"):
            raw = data.getlist("template_ids")
            # A plain dict: QueryDict.copy() would deep-copy the uploaded files.
            data = {key: data.get(key) for key in data.keys()}
            data["template_ids"] = [p.strip() for v in raw for p in str(v).split(",") if p.strip()]
        return super().to_internal_value(data)

    def validate_webhook_url(self, value):
        if value:
            from jobs.webhooks import WebhookUrlRefused, webhook_url_check

            try:
                webhook_url_check(value)
            except WebhookUrlRefused as e:
                raise serializers.ValidationError(str(e)) from e
        return value


class ShareLinkSerializer(serializers.ModelSerializer):
    job_id = serializers.UUIDField(read_only=True, allow_null=True)
    render_id = serializers.UUIDField(read_only=True, allow_null=True)
    has_password = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField()

    class Meta:
        model = ShareLink
        fields = ["id", "job_id", "render_id", "token_prefix", "created", "expires_at", "revoked_at", "views", "has_password", "state"]
        read_only_fields = fields

    def get_has_password(self, obj) -> bool:
        return bool(obj.password_hash)

    def get_state(self, obj) -> str:
        return sharing.sharelink_state(obj).value


class ShareLinkCreatedSerializer(ShareLinkSerializer):
    url = serializers.CharField(read_only=True, help_text="The public link. Returned only in this response.")

    class Meta(ShareLinkSerializer.Meta):
        fields = [*ShareLinkSerializer.Meta.fields, "url"]
        read_only_fields = fields


class ShareLinkCreateSerializer(serializers.Serializer):
    job_id = serializers.UUIDField(required=False)
    render_id = serializers.UUIDField(required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_in_days = serializers.IntegerField(required=False, min_value=1, max_value=365)
    password = serializers.CharField(required=False, allow_blank=True, max_length=200, write_only=True)

    def validate(self, attrs):
        if bool(attrs.get("job_id")) == bool(attrs.get("render_id")):
            raise serializers.ValidationError(_("Give exactly one of job_id or render_id."))
        return attrs


class UsageSerializer(serializers.Serializer):
    storage_bytes_used = serializers.IntegerField()
    storage_bytes_limit = serializers.IntegerField()
    render_minutes_used = serializers.FloatField()
    render_minutes_limit = serializers.FloatField()
    month_start = serializers.DateTimeField()
