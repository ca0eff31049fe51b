"""Small site-wide pages: /favicon.ico and the human-readable status page behind the footer's
"Status" link (machines keep /healthz and its JSON)."""
from __future__ import annotations

from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.health import health_report

CHECK_NAMES = {"database": _("Database"), "redis": _("Redis (queues and live updates)"),
               "queues": _("Render queues"), "workers": _("Render workers")}


@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico where a page names no icon (downloads, the share pages of old)."""
    return redirect(static("img/logo.svg"), permanent=True)


@never_cache
@require_GET
def status_page(request):
    report = health_report()
    checks = [{"name": CHECK_NAMES.get(key, key), "ok": check["ok"]} for key, check in report["checks"].items()]
    return render(request, "status.html", {"healthy": report["status"] == "ok", "checks": checks},
                  status=200 if report["status"] == "ok" else 503)
