"""REST API v1 (DRF): thin views over jobs.selectors / jobs.services / jobs.sharing.

The plumbing (errors, authentication, throttle, pagination, TeamAPIView) is jobs.api_support;
the serializers are jobs.api_serializers. Objects of another team are a 404.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as dtime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from accounts.quotas import month_start
from jobs import selectors, services, sharing
from jobs.api_serializers import (
    JobCreateSerializer,
    JobDetailSerializer,
    JobSerializer,
    RenderSerializer,
    ShareLinkCreatedSerializer,
    ShareLinkCreateSerializer,
    ShareLinkSerializer,
    TemplateSerializer,
    TemplateUploadSerializer,
    UsageSerializer,
)
from jobs.api_support import ERRORS, Conflict, ErrorEnvelopeSerializer, ServiceError, TeamAPIView, absolute_url, paginated
from jobs.models import Job, Render, ShareLink, Template
from jobs.usage import usage_meters

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
        raise exceptions.ValidationError({"created": _("Use an ISO 8601 date or date-time.")}) from None


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

        entries = files.zip_entries(selectors.renders_for_job(job=job))
        if not entries:
            raise Conflict(_("This job has no finished videos yet."))
        return files.zip_response(entries, filename=files.job_zip_name(job))


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

        return _serve(request, r.output, filename=files.render_download_name(r),
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
        expires_at = sharing.share_expiry_in(days=data.get("expires_in_days")) or data.get("expires_at")
        try:
            link, token = sharing.sharelink_create(team=self.team, created_by=self.actor_user, job=job, render=r,
                                                   expires_at=expires_at, password=data.get("password") or "")
        except sharing.ShareLinkError as e:
            raise ServiceError(str(e)) from e
        body = ShareLinkSerializer(link, context=self.ctx()).data
        body["url"] = absolute_url(request, "share_view", token)
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
        storage, minutes = usage_meters(team=self.team)
        data = {
            "storage_bytes_used": int(storage.used),
            "storage_bytes_limit": int(storage.limit),
            "render_minutes_used": round(minutes.used, 3),
            "render_minutes_limit": minutes.limit,
            "month_start": month_start(),
        }
        return Response(UsageSerializer(data).data)
