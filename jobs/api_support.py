"""The REST API's plumbing (DRF), shared by every view of jobs.api: one error shape, team
membership and the API key, the per-key throttle, pagination, the error schemas and the
OpenAPI description of the key authentication.

Every request acts for one team: the API key's team, or the session's current team. Errors are
always {"error": {"code": ..., "message": ...}}.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import PageNumberPagination
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

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import Membership

    class TeamHttpRequest(HttpRequest):
        """The Django request under a TeamAPIView, with what is set on it outside the stubs' view."""

        membership: Membership  # CurrentTeamMiddleware (lazy); TeamMember lets a session in only with one
        upload_team: Team  # set by upload_data, read by accounts.upload_handlers

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
        body: dict[str, Any] = {"code": code, "message": _flatten(detail), "fields": detail if isinstance(detail, dict) else None}
    else:
        detail_code = getattr(detail, "code", None)
        if detail_code and detail_code not in ("error", "invalid"):
            code = detail_code
        body = {"code": code, "message": _flatten(detail) if detail is not None else str(exc)}
    if isinstance(exc, exceptions.Throttled):
        wait = exc.wait  # type: ignore[attr-defined]  # drf-stubs 3.18 does not declare Throttled.wait (set in __init__)
        if wait is not None:
            body["retry_after"] = int(wait)
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
    def django_request(self) -> TeamHttpRequest:
        return cast("TeamHttpRequest", self.request._request)

    @property
    def team(self) -> Team:
        if isinstance(self.request.auth, ApiKey):
            return self.request.auth.team
        return self.django_request.membership.team

    @property
    def role(self) -> str:
        if isinstance(self.request.auth, ApiKey):
            return API_KEY_ROLE
        return self.django_request.membership.role

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
        page: list[Any] | None = paginator.paginate_queryset(qs, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True, context=self.ctx(), **kwargs).data)

    def upload_data(self):
        """request.data for a multipart upload, with the streaming quota handler's verdict: files
        are refused while they arrive (accounts.upload_handlers), charged to this team."""
        from accounts.upload_handlers import upload_rejection

        self.django_request.upload_team = self.team
        data = self.request.data
        rejection = upload_rejection(self.request._request)
        if rejection is not None:
            if rejection.code == "file_too_large":
                raise PayloadTooLarge(str(rejection))
            raise rejection
        return data

    def ctx(self) -> dict:
        return {"request": self.request, "view": self}

def absolute_url(request, name: str, *args) -> str:
    """The full URL of the route `name` for this request's host."""
    return request.build_absolute_uri(reverse(name, args=args))

# --- serializers ---------------------------------------------------------------------------

class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorSerializer()


ERRORS = {code: ErrorEnvelopeSerializer for code in (400, 401, 403, 404, 409, 429)}

def paginated(serializer_class):
    """The schema of a paginated list of `serializer_class` (what Pagination returns)."""
    return inline_serializer(
        name=f"Paginated{serializer_class.__name__.removesuffix('Serializer')}List",
        fields={"count": serializers.IntegerField(), "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True), "results": serializer_class(many=True)})


# --- OpenAPI -------------------------------------------------------------------------------

class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_keys.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "mp_…",
                "description": "A team API key from /team/api/: `Authorization: Bearer mp_…`."}
