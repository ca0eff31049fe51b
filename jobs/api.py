"""REST API v1 (DRF): thin views over jobs.selectors / jobs.services / jobs.sharing.

Every request acts for one team: the API key's team, or the session's current team. Objects of
another team are a 404. Errors are always {"error": {"code": ..., "message": ...}}.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as dtime

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.access import team_object_or_404
from accounts.api_keys import API_KEY_ROLE, ApiKeyAuthentication
from accounts.models import ApiKey, Team
from accounts.quotas import QuotaExceeded
from accounts.roles import role_can
from jobs import selectors, services, sharing
from jobs.models import Job, Render, ShareLink, Template

# --- errors --------------------------------------------------------------------------------

_CODES = {
    400: "invalid", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "file_too_large",
    415: "unsupported_media_type", 429: "throttled",
}


class Conflict(exceptions.APIException):
    status_code = 409
    default_code = "conflict"
    default_detail = _lazy("This conflicts with the object's current state.")


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "file_too_large"
    default_detail = _lazy("The file is too large.")


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten(v)}" if k != "non_field_errors" else _flatten(v) for k, v in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(v) for v in detail)
    return str(detail)


def api_exception_handler(exc, context):
    """One error shape for every failure: {"error": {"code", "message"[, "fields"]}}."""
    if isinstance(exc, QuotaExceeded):
        return Response({"error": {"code": f"quota_{exc.code}", "message": str(exc), "used": exc.used, "limit": exc.limit}},
                        status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, DjangoValidationError):
        # The services' ValidationErrors carry a stable code ("too_large", "undecodable", "state"...).
        code = getattr(exc, "code", None) or "invalid"
        status_code = {"too_large": 413, "state": 409}.get(code, 400)
        code = {"too_large": "file_too_large"}.get(code, code)
        return Response({"error": {"code": code, "message": " ".join(str(m) for m in exc.messages)}}, status=status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    code = getattr(exc, "default_code", None) or _CODES.get(response.status_code, "error")
    detail = getattr(exc, "detail", None)
    if isinstance(exc, exceptions.ValidationError):
        code = "invalid"
        body = {"code": code, "message": _flatten(detail), "fields": detail if isinstance(detail, dict) else None}
    else:
        if hasattr(detail, "code") and detail.code and detail.code not in ("error", "invalid"):
            code = detail.code
        body = {"code": code, "message": _flatten(detail) if detail is not None else str(exc)}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        body["retry_after"] = int(exc.wait)
    response.data = {"error": {k: v for k, v in body.items() if v is not None}}
    return response


class ServiceError(exceptions.APIException):
    """A service refused the request for a reason the user can fix (bad media, wrong state)."""

    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str, code: str = "invalid", status_code: int = 400):
        super().__init__(message, code)
        self.status_code = status_code
        self.default_code = code


# --- auth, permissions, throttling ---------------------------------------------------------

class TeamMember(BasePermission):
    """An active API key, or a signed-in user with a current team."""

    def has_permission(self, request, view):
        if isinstance(request.auth, ApiKey):
            return True
        if not getattr(request.user, "is_authenticated", False):
            raise exceptions.NotAuthenticated(_("Authentication required: send 'Authorization: Bearer <API key>'."))
        return bool(getattr(request._request, "membership", None))  # a LazyObject: bool() looks inside


class ApiKeyThrottle(SimpleRateThrottle):
    """Per API key (or per user for session requests), rate from DEFAULT_THROTTLE_RATES["api_key"]."""

    scope = "api_key"

    def get_rate(self):
        # Read at request time so tests and settings overrides take effect.
        return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(self.scope)

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.pk}"
        elif getattr(request.user, "is_authenticated", False):
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


class TeamAPIView(APIView):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [TeamMember]
    throttle_classes = [ApiKeyThrottle]

    def get_exception_handler(self):
        return api_exception_handler

    @property
    def team(self) -> Team:
        if isinstance(self.request.auth, ApiKey):
            return self.request.auth.team
        return self.request._request.membership.team

    @property
    def role(self) -> str:
        if isinstance(self.request.auth, ApiKey):
            return API_KEY_ROLE
        return self.request._request.membership.role

    @property
    def actor_user(self):
        """The person to record as creator (None for API keys)."""
        return None if isinstance(self.request.auth, ApiKey) else self.request.user

    def require(self, action: str) -> None:
        if not role_can(self.role, action):
            raise exceptions.PermissionDenied(_("Your role in this team does not allow this."))

    def get_object(self, model_or_qs, pk):
        return team_object_or_404(model_or_qs, actor=self.team, pk=pk)

    def paginate(self, qs, serializer_class, **kwargs):
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True, context=self.ctx(), **kwargs).data)

    def upload_data(self):
        """request.data for a multipart upload, with the streaming quota handler's verdict: files
        are refused while they arrive (accounts.upload_handlers), charged to this team."""
        from accounts.upload_handlers import upload_rejection

        self.request._request.upload_team = self.team
        data = self.request.data
        rejection = upload_rejection(self.request._request)
        if rejection is not None:
            if rejection.code == "file_too_large":
                raise PayloadTooLarge(str(rejection))
            raise rejection
        return data

    def ctx(self) -> dict:
        return {"request": self.request, "view": self}


def _abs(request, name: str, *args) -> str:
    return request.build_absolute_uri(reverse(name, args=args))


# --- serializers ---------------------------------------------------------------------------

class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorSerializer()


ERRORS = {code: ErrorEnvelopeSerializer for code in (400, 401, 403, 404, 409, 429)}


class TemplateSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    fitness = serializers.SerializerMethodField(
        help_text="The engine's verdict on the template's mouths once prepared: ok, note codes "
                  "(never_open, rarely_open, no_teeth) with advice in the request's language, the share "
                  "of open frames and of frames showing teeth, seconds of speech, and whether the "
                  "engine adapted to this speaker.")

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
        return _abs(self.context["request"], "api_template_detail", obj.pk)


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
    error_message = serializers.SerializerMethodField(help_text="The error in plain words, in the request's language (Accept-Language) when its code is known.")

    class Meta:
        model = Render
        fields = ["id", "job_id", "template_id", "template_name", "status", "progress", "stage", "error_code",
                  "error_message", "output_size_bytes", "output_duration", "quality", "timings", "attempts",
                  "created", "started", "finished", "expires_at", "url", "download_url", "log_url"]
        read_only_fields = fields

    def get_url(self, obj) -> str:
        return _abs(self.context["request"], "api_render_detail", obj.pk)

    def get_error_message(self, obj) -> str:
        return selectors.render_error_text(obj)

    def get_download_url(self, obj) -> str | None:
        if obj.status != Render.Status.DONE or not obj.output:
            return None
        return _abs(self.context["request"], "api_render_download", obj.pk)

    def get_log_url(self, obj) -> str | None:
        return _abs(self.context["request"], "api_render_log", obj.pk) if obj.log_path else None


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
        counts: dict[str, int] = {}
        for r in obj.renders.all():  # prefetched by jobs_for_team
            counts[r.status] = counts.get(r.status, 0) + 1
        return counts

    def get_url(self, obj) -> str:
        return _abs(self.context["request"], "api_job_detail", obj.pk)

    def get_zip_url(self, obj) -> str:
        return _abs(self.context["request"], "api_job_zip", obj.pk)


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
                raise serializers.ValidationError(str(e))
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


def paginated(serializer_class):
    """The schema of a paginated list of `serializer_class` (what Pagination returns)."""
    return inline_serializer(
        name=f"Paginated{serializer_class.__name__.removesuffix('Serializer')}List",
        fields={"count": serializers.IntegerField(), "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True), "results": serializer_class(many=True)})


# --- helpers for files ---------------------------------------------------------------------

def _serve(request, name, *, filename: str, attachment: bool, content_type: str | None = None):
    from jobs import files

    return files.serve_media(request, name, filename=filename, attachment=attachment, content_type=content_type)


# --- templates -----------------------------------------------------------------------------

class TemplateListView(TeamAPIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(operation_id="templates_list", responses={200: paginated(TemplateSerializer), **ERRORS},
                   parameters=[OpenApiParameter("search", str), OpenApiParameter("tag", str),
                               OpenApiParameter("page", int), OpenApiParameter("page_size", int)])
    def get(self, request):
        qs = selectors.templates_for_team(team=self.team, tag=request.query_params.get("tag", ""),
                                          search=request.query_params.get("search", ""))
        return self.paginate(qs, TemplateSerializer)

    @extend_schema(operation_id="templates_upload", request={"multipart/form-data": TemplateUploadSerializer},
                   responses={201: TemplateSerializer, **ERRORS, 413: ErrorEnvelopeSerializer})
    def post(self, request):
        self.require("template.upload")
        form = TemplateUploadSerializer(data=self.upload_data())
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        template = services.template_upload(team=self.team, user=self.actor_user, uploaded_file=upload,
                                            name=form.validated_data.get("name") or "", tags=form.validated_data.get("tags") or [])
        return Response(TemplateSerializer(template, context=self.ctx()).data, status=201)


class TemplateDetailView(TeamAPIView):
    @extend_schema(operation_id="templates_retrieve", responses={200: TemplateSerializer, **ERRORS})
    def get(self, request, pk):
        return Response(TemplateSerializer(self.get_object(Template, pk), context=self.ctx()).data)

    @extend_schema(operation_id="templates_delete", responses={204: None, **ERRORS})
    def delete(self, request, pk):
        template = self.get_object(Template, pk)
        self.require("template.delete")
        services.template_delete(template=template, user=self.actor_user)
        return Response(status=204)


# --- jobs ----------------------------------------------------------------------------------

def _parse_when(value: str, *, end: bool) -> datetime:
    """An ISO date (a whole day) or date-time, as UTC; anything odd is a 400, never a 500."""
    try:
        dt = parse_datetime(value)
        if dt is None:
            d = parse_date(value)
            if d is None:
                raise ValueError(value)
            dt = datetime.combine(d + timedelta(days=1) if end else d, dtime.min)
        if timezone.is_naive(dt):
            dt = timezone.make_aware(dt, timezone.get_default_timezone())
        # Databases refuse exotic offsets (PostgreSQL: "-17:01"); UTC is always storable.
        return dt.astimezone(UTC)
    except (ValueError, OverflowError):
        raise exceptions.ValidationError({"created": _("Use an ISO 8601 date or date-time.")})


class JobListView(TeamAPIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(operation_id="jobs_list", responses={200: paginated(JobSerializer), **ERRORS}, parameters=[
        OpenApiParameter("status", str, enum=[c for c, _l in Job.Status.choices]),
        OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="ISO date or date-time, inclusive"),
        OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="ISO date (whole day included) or date-time, exclusive"),
        OpenApiParameter("search", str), OpenApiParameter("page", int), OpenApiParameter("page_size", int)])
    def get(self, request):
        params = request.query_params
        status_filter = params.get("status", "")
        if status_filter and status_filter not in Job.Status.values:
            raise exceptions.ValidationError({"status": _("Unknown status.")})
        qs = selectors.jobs_for_team(team=self.team, status=status_filter, search=params.get("search", ""))
        if params.get("created_after"):
            qs = qs.filter(created__gte=_parse_when(params["created_after"], end=False))
        if params.get("created_before"):
            qs = qs.filter(created__lt=_parse_when(params["created_before"], end=True))
        return self.paginate(qs.order_by("-created", "id"), JobSerializer)

    @extend_schema(operation_id="jobs_create", request={"multipart/form-data": JobCreateSerializer},
                   responses={201: JobDetailSerializer, **ERRORS, 413: ErrorEnvelopeSerializer})
    def post(self, request):
        self.require("job.create")
        form = JobCreateSerializer(data=self.upload_data())
        form.is_valid(raise_exception=True)
        data = form.validated_data
        for pk in dict.fromkeys(data["template_ids"]):
            self.get_object(Template, pk)  # another team's template id is a 404, like everywhere
        job = services.job_create(team=self.team, user=self.actor_user, audio_file=data["audio"],
                                  template_ids=list(dict.fromkeys(data["template_ids"])),
                                  title=data.get("title") or "", priority=data["priority"], webhook_url=data.get("webhook_url") or "")
        return Response(JobDetailSerializer(job, context=self.ctx()).data, status=201)


class JobDetailView(TeamAPIView):
    @extend_schema(operation_id="jobs_retrieve", responses={200: JobDetailSerializer, **ERRORS})
    def get(self, request, pk):
        return Response(JobDetailSerializer(self.get_object(Job, pk), context=self.ctx()).data)


class JobCancelView(TeamAPIView):
    @extend_schema(operation_id="jobs_cancel", request=None, responses={200: JobDetailSerializer, **ERRORS})
    def post(self, request, pk):
        job = self.get_object(Job, pk)
        self.require("job.cancel")
        services.job_cancel(job=job, user=self.actor_user)
        job.refresh_from_db()
        return Response(JobDetailSerializer(job, context=self.ctx()).data)


class JobRetryView(TeamAPIView):
    @extend_schema(operation_id="jobs_retry", request=None, responses={200: JobDetailSerializer, **ERRORS},
                   description="Retry every failed or cancelled render of the job.")
    def post(self, request, pk):
        job = self.get_object(Job, pk)
        self.require("job.retry")
        try:
            job = services.job_retry(job=job, user=self.actor_user)  # the all-or-nothing rule is the service's
        except DjangoValidationError as e:
            if e.code == "nothing_to_retry":  # the API's answer for it: 409 "conflict"
                raise Conflict(e.messages[0]) from e
            raise
        return Response(JobDetailSerializer(job, context=self.ctx()).data)


class JobZipView(TeamAPIView):
    @extend_schema(operation_id="jobs_zip", responses={(200, "application/zip"): OpenApiTypes.BINARY, **ERRORS},
                   description="Every finished video of the job in one zip, streamed.")
    def get(self, request, pk):
        job = self.get_object(Job, pk)
        from jobs import files

        renders = [r for r in selectors.renders_for_job(job=job) if r.status == Render.Status.DONE and r.output]
        if not renders:
            raise Conflict(_("This job has no finished videos yet."))
        names = files.unique_names([r.template_name or str(r.pk)[:8] for r in renders], ext=".mp4")
        entries = [(r.output.name, name) for r, name in zip(renders, names)]
        return files.zip_response(entries, filename=files.safe_name(job.title or f"job-{str(job.pk)[:8]}") + ".zip")


# --- renders -------------------------------------------------------------------------------

class RenderDetailView(TeamAPIView):
    @extend_schema(operation_id="renders_retrieve", responses={200: RenderSerializer, **ERRORS})
    def get(self, request, pk):
        return Response(RenderSerializer(self.get_object(Render, pk), context=self.ctx()).data)


class RenderDownloadView(TeamAPIView):
    @extend_schema(operation_id="renders_download", responses={(200, "video/mp4"): OpenApiTypes.BINARY, **ERRORS})
    def get(self, request, pk):
        r = self.get_object(Render, pk)
        if r.status != Render.Status.DONE:
            raise Conflict(_("This render has no video (status: %(status)s).") % {"status": r.status})
        from jobs import files

        return _serve(request, r.output, filename=files.safe_name(r.template_name or "render") + ".mp4",
                      attachment=True, content_type="video/mp4")


class RenderLogView(TeamAPIView):
    @extend_schema(operation_id="renders_log", responses={(200, "text/plain"): OpenApiTypes.STR, **ERRORS})
    def get(self, request, pk):
        r = self.get_object(Render, pk)
        if not r.log_path:
            raise exceptions.NotFound(_("This render has no log yet."))
        return _serve(request, r.log_path, filename=f"{r.pk}.log", attachment=False,
                      content_type="text/plain; charset=utf-8")


class RenderCancelView(TeamAPIView):
    @extend_schema(operation_id="renders_cancel", request=None, responses={200: RenderSerializer, **ERRORS})
    def post(self, request, pk):
        r = self.get_object(Render, pk)
        self.require("job.cancel")
        services.render_cancel(render=r, user=self.actor_user)
        r.refresh_from_db()
        return Response(RenderSerializer(r, context=self.ctx()).data)


class RenderRetryView(TeamAPIView):
    @extend_schema(operation_id="renders_retry", request=None, responses={200: RenderSerializer, **ERRORS})
    def post(self, request, pk):
        r = self.get_object(Render, pk)
        self.require("job.retry")
        services.render_retry(render=r, user=self.actor_user)
        r.refresh_from_db()
        return Response(RenderSerializer(r, context=self.ctx()).data)


# --- share links ---------------------------------------------------------------------------

class ShareLinkListView(TeamAPIView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(operation_id="shares_list", responses={200: paginated(ShareLinkSerializer), **ERRORS},
                   parameters=[OpenApiParameter("job_id", OpenApiTypes.UUID), OpenApiParameter("render_id", OpenApiTypes.UUID),
                               OpenApiParameter("page", int), OpenApiParameter("page_size", int)])
    def get(self, request):
        job = self.get_object(Job, request.query_params["job_id"]) if request.query_params.get("job_id") else None
        r = self.get_object(Render, request.query_params["render_id"]) if request.query_params.get("render_id") else None
        return self.paginate(sharing.share_links_for_team(team=self.team, job=job, render=r), ShareLinkSerializer)

    @extend_schema(operation_id="shares_create", request=ShareLinkCreateSerializer, responses={201: ShareLinkCreatedSerializer, **ERRORS})
    def post(self, request):
        self.require("share.create")
        form = ShareLinkCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        job = self.get_object(Job, data["job_id"]) if data.get("job_id") else None
        r = self.get_object(Render, data["render_id"]) if data.get("render_id") else None
        expires_at = data.get("expires_at")
        if data.get("expires_in_days"):
            expires_at = timezone.now() + timedelta(days=data["expires_in_days"])
        try:
            link, token = sharing.sharelink_create(team=self.team, created_by=self.actor_user, job=job, render=r,
                                                   expires_at=expires_at, password=data.get("password") or "")
        except sharing.ShareLinkError as e:
            raise ServiceError(str(e))
        body = ShareLinkSerializer(link, context=self.ctx()).data
        body["url"] = _abs(request, "share_view", token)
        return Response(body, status=201)


class ShareLinkDetailView(TeamAPIView):
    @extend_schema(operation_id="shares_retrieve", responses={200: ShareLinkSerializer, **ERRORS})
    def get(self, request, pk):
        return Response(ShareLinkSerializer(self.get_object(ShareLink, pk), context=self.ctx()).data)

    @extend_schema(operation_id="shares_revoke", responses={200: ShareLinkSerializer, **ERRORS},
                   description="Revoke the link: its page answers 410 from now on. Revoking twice is harmless.")
    def delete(self, request, pk):
        link = self.get_object(ShareLink, pk)
        self.require("share.revoke")
        sharing.sharelink_revoke(link=link)
        return Response(ShareLinkSerializer(link, context=self.ctx()).data)


# --- usage ---------------------------------------------------------------------------------

class UsageView(TeamAPIView):
    @extend_schema(operation_id="usage_retrieve", responses={200: UsageSerializer, **ERRORS})
    def get(self, request):
        from accounts import quotas

        team = self.team
        data = {
            "storage_bytes_used": quotas.storage_bytes_used(team=team),
            "storage_bytes_limit": int(team.plan("storage_bytes_limit")),
            "render_minutes_used": round(quotas.render_seconds_used(team=team) / 60.0, 3),
            "render_minutes_limit": float(team.plan("render_minutes_limit")),
            "month_start": quotas.month_start(),
        }
        return Response(UsageSerializer(data).data)


# --- OpenAPI -------------------------------------------------------------------------------

from drf_spectacular.extensions import OpenApiAuthenticationExtension  # noqa: E402


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_keys.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "mp_…",
                "description": "A team API key from /team/api/: `Authorization: Bearer mp_…`."}
