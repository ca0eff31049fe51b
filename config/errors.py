"""Error pages Django would otherwise draw itself."""
from __future__ import annotations

from django.shortcuts import render


def csrf_failure(request, reason: str = ""):
    """A failed CSRF check (settings.CSRF_FAILURE_VIEW): the product's own page in the reader's
    language, with a way back; never Django's technical page, even with DEBUG on. The reason
    is logged by Django (django.security.csrf), not shown."""
    return render(request, "403_csrf.html", status=403)
