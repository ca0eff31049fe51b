"""Share-link pages: the portal's create/revoke (members) and the public /s/<token>/ pages.

The public pages show a player and a download button and nothing else of the team. Unknown
tokens are a 404; revoked and expired links a 410 with the same neutral page.
"""
from __future__ import annotations

from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.access import membership_for, team_object_or_404
from jobs.files import render_download_name
from jobs.models import Job, Render, ShareLink
from jobs.sharing import (
    ShareLinkError,
    ShareState,
    share_expiry_in,
    sharelink_check_password,
    sharelink_create,
    sharelink_for_token,
    sharelink_password_attempt,
    sharelink_render_or_none,
    sharelink_renders,
    sharelink_revoke,
    sharelink_session_allows,
    sharelink_session_grant,
    sharelink_state,
    sharelink_view_record,
)


def _file_response(request, field, content_type: str, *, attachment_name: str | None = None):
    from jobs.files import serve_media

    if not field:
        raise Http404
    return serve_media(request, field, filename=attachment_name or Path(field.name).name,
                       attachment=attachment_name is not None, content_type=content_type)


def _back(request, fallback: str):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(fallback)


def _job_url(job: Job) -> str:
    try:
        return reverse("job_detail", args=[job.pk])
    except Exception:  # the jobs pages may not be mounted (e.g. a trimmed test urlconf)
        return "/"


# --- portal (members) ----------------------------------------------------------------------

@login_required
@require_POST
def share_create(request):
    render_id, job_id = request.POST.get("render"), request.POST.get("job")
    kind, _sep, target_id = request.POST.get("target", "").partition(":")  # the panel's <select>
    if kind == "render":
        render_id = target_id
    elif kind == "job":
        job_id = target_id
    if render_id:
        target = team_object_or_404(Render.objects.select_related("job", "team"), actor=request.user, pk=render_id)
        job = target.job
    elif job_id:
        target = job = team_object_or_404(Job.objects.select_related("team"), actor=request.user, pk=job_id)
    else:
        raise Http404
    membership = membership_for(request.user, target.team)
    if membership is None or not membership.can("share.create"):
        return HttpResponseForbidden(_("Your role cannot create share links."))
    try:
        days = int(request.POST.get("expires_days") or 0)
    except ValueError:
        days = 0
    expires_at = share_expiry_in(days=days)
    try:
        link, token = sharelink_create(
            team=target.team, created_by=request.user, expires_at=expires_at, password=request.POST.get("password", ""),
            job=None if render_id else job, render=target if render_id else None,
        )
    except ShareLinkError as e:
        return render(request, "sharing/created.html", {"error": str(e), "job": job, "back_url": _job_url(job)}, status=400)
    url = request.build_absolute_uri(reverse("share_view", args=[token]))
    # The token exists in plaintext only in this response: it is never stored.
    return render(request, "sharing/created.html", {"link": link, "share_url": url, "job": job, "back_url": _job_url(job)})


@login_required
@require_POST
def share_revoke(request, pk):
    link = team_object_or_404(ShareLink.objects.select_related("job", "render__job", "team"), actor=request.user, pk=pk)
    membership = membership_for(request.user, link.team)
    if membership is None or not membership.can("share.revoke"):
        return HttpResponseForbidden(_("Your role cannot revoke share links."))
    sharelink_revoke(link=link)
    return _back(request, _job_url(link.job or link.render.job))


# --- public --------------------------------------------------------------------------------

def _link_or_error(request, token):
    """(link, None) for a usable link, else (None, an error response)."""
    link = sharelink_for_token(token)
    if link is None:
        return None, render(request, "sharing/unavailable.html", {"gone": False}, status=404)
    if sharelink_state(link) is not ShareState.OK:
        return None, render(request, "sharing/unavailable.html", {"gone": True}, status=410)
    return link, None


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


@never_cache
def share_view(request, token):
    link, error = _link_or_error(request, token)
    if error:
        return error
    if link.password_hash and not sharelink_session_allows(request.session, link):
        status, message = 200, ""
        if request.method == "POST":
            if not sharelink_password_attempt(link=link, ip=_client_ip(request)):
                return render(request, "sharing/password.html", {"rate_limited": True}, status=429)
            if sharelink_check_password(link, request.POST.get("password", "")):
                sharelink_session_grant(request.session, link)
                return redirect("share_view", token=token)
            status, message = 403, _("That password is not right.")
        return render(request, "sharing/password.html", {"error": message}, status=status)
    renders = sharelink_renders(link)
    if not renders:
        return render(request, "sharing/unavailable.html", {"gone": True}, status=410)
    sharelink_view_record(link=link)
    items = []
    for r in renders:
        items.append({
            "render": r,
            "video_url": reverse("share_video", args=[token, r.pk]),
            "download_url": reverse("share_download", args=[token, r.pk]),
            "poster_url": reverse("share_poster", args=[token, r.pk]) if r.template and r.template.poster else "",
            "width": r.template.width if r.template else 0, "height": r.template.height if r.template else 0,
        })
    title = (link.job or link.render.job).title or _("Shared video")
    first = items[0]
    return render(request, "sharing/view.html", {
        "title": title,
        "items": items,
        "og_video": request.build_absolute_uri(first["video_url"]),
        "og_image": request.build_absolute_uri(first["poster_url"]) if first["poster_url"] else "",
        "og_url": request.build_absolute_uri(),
    })


def _shared_render(request, token, render_id):
    link, error = _link_or_error(request, token)
    if error:
        return None, error
    if not sharelink_session_allows(request.session, link):
        return None, HttpResponseForbidden(_("This link needs a password."))
    r = sharelink_render_or_none(link, render_id)
    if r is None:
        raise Http404
    return r, None


def share_video(request, token, render_id):
    r, error = _shared_render(request, token, render_id)
    if error:
        return error
    return _file_response(request, r.output, "video/mp4")


def share_download(request, token, render_id):
    r, error = _shared_render(request, token, render_id)
    if error:
        return error
    return _file_response(request, r.output, "video/mp4", attachment_name=render_download_name(r, public=True))


def share_poster(request, token, render_id):
    r, error = _shared_render(request, token, render_id)
    if error:
        return error
    return _file_response(request, r.template.poster if r.template else None, "image/jpeg")
