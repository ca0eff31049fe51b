"""Content-Security-Policy for HTML pages: scripts only from this origin (every asset is
vendored under static/, so no inline script and no CDN is needed).

The staff-only django-rq pages and the API's Swagger/ReDoc pages ship inline scripts of their
own; they get the same policy with 'unsafe-inline' scripts (and blob: workers for ReDoc).
Styles keep 'unsafe-inline': templates set progress values with style attributes."""
from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

RELAXED_PREFIXES = ("/admin/rq/", "/api/v1/docs/", "/api/v1/redoc/")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _media_origin() -> str:
    """Where browsers fetch media from besides this site: the bucket of presigned URLs (S3)."""
    if settings.STORAGE_BACKEND != "s3":
        return ""
    endpoint = settings.AWS_S3_PUBLIC_ENDPOINT_URL or settings.STORAGES["default"].get("OPTIONS", {}).get("endpoint_url") or ""
    return _origin(endpoint) or "https://*.amazonaws.com"


def policy(*, relaxed: bool = False) -> str:
    media = " ".join(filter(None, ["'self'", "blob:", "data:", _media_origin()]))
    directives = {
        "default-src": "'self'",
        "script-src": " ".join(filter(None, ["'self'", "'unsafe-inline'" if relaxed else "", settings.CSP_SCRIPT_SRC_EXTRA])),
        "style-src": "'self' 'unsafe-inline'",
        "img-src": media,
        "media-src": media,
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "worker-src": "'self' blob:" if relaxed else "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{k} {v}" for k, v in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.strict, self.relaxed = policy(), policy(relaxed=True)

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response and response.get("Content-Type", "").startswith("text/html"):
            relaxed = request.path.startswith(RELAXED_PREFIXES)
            response["Content-Security-Policy"] = self.relaxed if relaxed else self.strict
        return response
