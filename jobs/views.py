"""Portal pages of the jobs app: thin; reads through selectors, writes through services."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts.access import membership_for
from accounts.quotas import QuotaExceeded
from accounts.upload_handlers import upload_rejection
from jobs import files, samples, selectors, services
from jobs import gallery as gallery_actions
from jobs.forms import GalleryFilterForm, JobCreateForm, JobFilterForm
from jobs.models import Render


def _wants_json(request) -> bool:
    return request.headers.get("X-Requested-With") == "XMLHttpRequest" or "application/json" in request.headers.get("Accept", "")


def _team_or_redirect(request):
    """The current team (team switcher); None when the user has none yet."""
    return request.team if request.membership else None


def _team_or_404(request):
    """The current team for an action (a POST): a visitor without one has nothing to act on."""
    team = _team_or_redirect(request)
    if team is None:
        raise Http404
    return team


def _no_team(request):
    try:
        return redirect("team_create")
    except NoReverseMatch:
        return render(request, "jobs/no_team.html", status=200)


def _can(request, action: str, team=None) -> bool:
    membership = membership_for(request.user, team) if team is not None else request.membership
    return bool(membership) and membership.can(action)


def _errors(exc) -> list[str]:
    if isinstance(exc, ValidationError):
        return [str(m) for m in exc.messages]
    return [str(exc)]


# --- Dashboard -----------------------------------------------------------------------------

def dashboard(request):
    if not request.user.is_authenticated:  # a visitor: what this is, and the way in
        return render(request, "jobs/welcome.html")
    team = _team_or_redirect(request)
    if team is None:
        return _no_team(request)
    context = {
        "has_samples": bool(samples.sample_templates(team=team)),
        "can_upload": _can(request, "template.upload"),
        "team": team,
        "recent_jobs": selectors.jobs_for_team(team=team)[:8],
        "render_counts": (counts := selectors.render_counts_for_team(team=team)),
        "in_progress_count": sum(counts.get(s, 0) for s in selectors.RENDER_UNFINISHED),
        "template_count": selectors.templates_for_team(team=team).count(),
        "can_create": _can(request, "job.create"),
    }
    return render(request, "jobs/dashboard.html", context)


@login_required
@require_POST
def samples_add(request):
    """"Try the samples" for a team without them: add the sample templates, then the new batch."""
    team = _team_or_404(request)
    try:
        samples.samples_seed(team=team, user=request.user)
    except (ValidationError, QuotaExceeded, PermissionDenied) as e:
        for message in _errors(e):
            messages.error(request, message)
        return redirect("dashboard")
    return redirect(reverse("job_new") + "?sample=1")


# --- Jobs ----------------------------------------------------------------------------------

@login_required
def job_list(request):
    team = _team_or_redirect(request)
    if team is None:
        return _no_team(request)
    filters = JobFilterForm(request.GET or None)
    status = search = ""
    if filters.is_valid():
        status, search = filters.cleaned_data["status"], filters.cleaned_data["q"]
    page = Paginator(selectors.jobs_for_team(team=team, status=status, search=search), 25).get_page(request.GET.get("page"))
    return render(request, "jobs/job_list.html", {"page": page, "filters": filters if filters.is_bound else JobFilterForm(),
                                                  "can_create": _can(request, "job.create")})


@login_required
def job_new(request):
    team = _team_or_redirect(request)
    if team is None:
        return _no_team(request)
    if not _can(request, "job.create"):
        raise PermissionDenied(_("Your role in this team does not allow starting batches."))
    templates = selectors.templates_for_team(team=team).exclude(prep_status="failed")
    priorities = selectors.priorities_allowed(team=team)
    if request.method == "POST":
        form = JobCreateForm(request.POST, request.FILES, templates=templates, priorities=priorities)
        rejection = upload_rejection(request)
        if rejection is not None:
            form.add_error(None, str(rejection))
        if form.is_valid():
            try:
                audio = form.cleaned_data["audio"] or samples.sample_voice_upload()
                job = services.job_create(
                    team=team, user=request.user, audio_file=audio,
                    template_ids=form.cleaned_data["templates"], priority=form.cleaned_data["priority"],
                    title=form.cleaned_data["title"])
            except (ValidationError, QuotaExceeded) as e:
                for message in _errors(e):
                    form.add_error(None, message)
            else:
                if _wants_json(request):
                    return JsonResponse({"ok": True, "id": str(job.pk), "url": reverse("job_detail", args=[job.pk])}, status=201)
                messages.success(request, _("Batch started: %(n)d videos.") % {"n": job.renders.count()})
                return redirect("job_detail", pk=job.pk)
        if _wants_json(request):
            errors = [str(m) for errs in form.errors.values() for m in errs]
            return JsonResponse({"ok": False, "errors": errors}, status=400)
    else:
        preselected = request.GET.getlist("template")
        use_samples = request.GET.get("sample") == "1"
        if use_samples:  # "Try the samples": their templates and the sample voice, ready to start
            preselected += [str(t.pk) for t in samples.sample_templates(team=team)]
        form = JobCreateForm(templates=templates, priorities=priorities,
                             initial={"templates": preselected, "sample_voice": use_samples,
                                      "title": _("Sample batch") if use_samples else ""})
    return render(request, "jobs/job_new.html", {"form": form, "templates": form.template_objects,
                                                 "audio_max_seconds": team.plan("audio_max_seconds"),
                                                 "estimate": selectors.batch_estimate_inputs(team=team),
                                                 "sample_voice_seconds": samples.sample_voice_seconds()})


@login_required
def job_detail(request, pk):
    job = selectors.job_detail_for(actor=request.user, pk=pk)
    renders = list(selectors.renders_for_job(job=job))
    for r in renders:
        r.findings = selectors.quality_findings(r.quality or {})
        r.eta = selectors.render_eta_seconds(r)
        r.queue_position = selectors.render_queue_position(r)
        r.error_text = selectors.render_error_text(r)
    context = {
        "job": job, "renders": renders, "overall": selectors.job_progress(job),
        "job_eta_minutes": _minutes_up(selectors.job_eta_seconds(job)),
        "done_count": selectors.render_status_counts(renders).get(Render.Status.DONE, 0),
        "can_cancel": _can(request, "job.cancel", job.team), "can_retry": _can(request, "job.retry", job.team),
        "can_share": _can(request, "share.create", job.team),
        "ws_path": f"/ws/jobs/{job.pk}/",
    }
    return render(request, "jobs/job_detail.html", context)


def _minutes_up(seconds):
    import math

    return math.ceil(seconds / 60) if seconds else None


@login_required
@require_POST
def job_cancel(request, pk):
    job = selectors.job_detail_for(actor=request.user, pk=pk)
    try:
        services.job_cancel(job=job, user=request.user)
    except PermissionDenied as e:
        messages.error(request, str(e))
    else:
        messages.info(request, _("Cancelling the batch: queued videos are dropped, running ones stop shortly."))
    return redirect("job_detail", pk=pk)


@login_required
@require_GET
def job_zip(request, pk):
    job = selectors.job_detail_for(actor=request.user, pk=pk)
    entries = files.zip_entries(selectors.renders_for_job(job=job))
    if not entries:
        raise Http404(_("No finished videos to download yet."))
    return files.zip_response(entries, filename=files.job_zip_name(job))


# --- Renders -------------------------------------------------------------------------------

def _finished_render(request, pk) -> Render:
    render_obj = selectors.render_detail_for(actor=request.user, pk=pk)
    if not render_obj.has_video:
        raise Http404
    return render_obj


@login_required
@require_GET
def render_video(request, pk):
    render_obj = _finished_render(request, pk)
    return files.serve_media(request, render_obj.output, filename=files.render_download_name(render_obj, with_batch=True),
                             content_type="video/mp4")


@login_required
@require_GET
def render_download(request, pk):
    render_obj = _finished_render(request, pk)
    return files.serve_media(request, render_obj.output, filename=files.render_download_name(render_obj, with_batch=True),
                            content_type="video/mp4", attachment=True)


@login_required
@require_GET
def render_log(request, pk):
    render_obj = selectors.render_detail_for(actor=request.user, pk=pk)
    if not render_obj.log_path:
        raise Http404
    return files.serve_media(request, render_obj.log_path,
                            filename=f"render-{render_obj.pk}.log", content_type="text/plain; charset=utf-8")


@login_required
@require_POST
def render_cancel(request, pk):
    render_obj = selectors.render_detail_for(actor=request.user, pk=pk)
    try:
        services.render_cancel(render=render_obj, user=request.user)
    except PermissionDenied as e:
        messages.error(request, str(e))
    return redirect("job_detail", pk=render_obj.job_id)


@login_required
@require_POST
def render_retry(request, pk):
    render_obj = selectors.render_detail_for(actor=request.user, pk=pk)
    try:
        services.render_retry(render=render_obj, user=request.user)
    except (PermissionDenied, ValidationError, QuotaExceeded) as e:
        for message in _errors(e):
            messages.error(request, message)
    else:
        messages.info(request, _("“%(name)s” queued again.") % {"name": render_obj.template_name})
    return redirect("job_detail", pk=render_obj.job_id)


@login_required
def gallery(request):
    team = _team_or_redirect(request)
    if team is None:
        return _no_team(request)
    filters = GalleryFilterForm(request.GET or None, templates=selectors.templates_for_team(team=team),
                                jobs=selectors.jobs_for_team(team=team)[:200])
    wanted = filters.cleaned_data if filters.is_valid() else {}
    renders = selectors.renders_finished_for_team(
        team=team, search=wanted.get("q", ""), template=wanted.get("template") or None, job=wanted.get("job") or None,
        since=wanted.get("since"), until=wanted.get("until"))
    page = Paginator(renders, 24).get_page(request.GET.get("page"))
    return render(request, "jobs/gallery.html", {
        "page": page, "filters": filters,
        "filtered": bool(request.GET.get("q") or any(wanted.get(k) for k in ("template", "job", "since", "until"))),
        "can_delete": _can(request, "job.delete"), "can_share": _can(request, "share.create"),
    })


@login_required
@require_POST
def gallery_bulk(request):
    """The selected videos of the gallery: one zip, deleted, or one share link each."""
    team = _team_or_404(request)
    ids = request.POST.getlist("render")[:500]
    renders = list(selectors.renders_finished_for_team(team=team).filter(pk__in=[i for i in ids if _is_uuid(i)]))
    action = request.POST.get("action")
    if not renders:
        messages.error(request, _("Select one or more videos first."))
        return redirect("gallery")
    try:
        if action == "zip":
            return files.zip_response(files.zip_entries(renders), filename="mouthpiece-videos.zip")
        if action == "delete":
            n = gallery_actions.renders_delete(team=team, user=request.user, renders=renders)
            messages.success(request, ngettext("%(n)d video deleted.", "%(n)d videos deleted.", n) % {"n": n})
            return redirect("gallery")
        if action == "share":
            shared = gallery_actions.renders_share(team=team, user=request.user, renders=renders)
            links = [{"render": r, "url": request.build_absolute_uri(reverse("share_view", args=[token]))} for r, _l, token in shared]
            return render(request, "sharing/created.html", {"links": links, "back_url": reverse("gallery"),
                                                            "back_label": _("Back to the gallery")})
    except PermissionDenied as e:
        messages.error(request, str(e))
        return redirect("gallery")
    raise Http404


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
