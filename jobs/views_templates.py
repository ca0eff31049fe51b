"""Portal pages of the template library: thin; reads through selectors, writes through services."""
from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.quotas import QuotaExceeded
from accounts.upload_handlers import upload_rejection
from jobs import files, previews, selectors, services
from jobs.forms import TemplateEditForm, TemplateUploadForm
from jobs.views import _can, _errors, _no_team, _team_or_404, _team_or_redirect, _wants_json

# --- Templates -----------------------------------------------------------------------------

@login_required
def template_list(request):
    team = _team_or_redirect(request)
    if team is None:
        return _no_team(request)
    tag = request.GET.get("tag", "").strip().lower()
    search = request.GET.get("q", "").strip()
    templates = selectors.templates_for_team(team=team, tag=tag, search=search)
    all_tags = sorted({t for tpl in selectors.templates_for_team(team=team) for t in (tpl.tags or [])})
    context = {
        "templates": templates, "tag": tag, "search": search, "all_tags": all_tags,
        "form": TemplateUploadForm(), "can_upload": _can(request, "template.upload"),
        "max_bytes": team.plan("template_max_bytes"), "max_seconds": team.plan("template_max_seconds"),
        "ws_path": f"/ws/teams/{team.pk}/templates/",
    }
    return render(request, "jobs/template_list.html", context)


@login_required
@require_POST
def template_upload(request):
    team = _team_or_404(request)
    form = TemplateUploadForm(request.POST, request.FILES)
    created, errors, duplicates = [], [], []
    rejection = upload_rejection(request)
    if rejection is not None:
        errors.append(str(rejection))
    if form.is_valid():
        for upload in request.FILES.getlist("file"):
            try:
                created.append(services.template_upload(team=team, user=request.user, uploaded_file=upload,
                                                        name=form.cleaned_data["name"] if len(request.FILES.getlist("file")) == 1 else "",
                                                        tags=form.cleaned_data["tags"]))
            except services.DuplicateTemplate as e:  # offered as the template it already is
                duplicates.append(e.template)
            except (ValidationError, QuotaExceeded, PermissionDenied) as e:
                errors.extend(f"{upload.name}: {m}" for m in _errors(e))
    else:
        errors.extend(str(m) for field_errors in form.errors.values() for m in field_errors)
    if _wants_json(request):
        status = 201 if created and not errors else 200 if duplicates and not errors else 400
        return JsonResponse({
            "ok": not errors,
            "duplicates": [{"id": str(t.pk), "name": t.name, "url": reverse("template_detail", args=[t.pk]),
                            "message": _("Already in the library as “%(name)s”.") % {"name": t.name}} for t in duplicates],
            "templates": [{"id": str(t.pk), "name": t.name, "url": reverse("template_detail", args=[t.pk]),
                           "card_html": render_to_string("jobs/_template_card.html", {"t": t}, request)} for t in created],
            "errors": errors,
        }, status=status)
    for t in created:
        messages.success(request, _("“%(name)s” uploaded; preparing it now.") % {"name": t.name})
    for t in duplicates:
        messages.info(request, _("Already in the library as “%(name)s”.") % {"name": t.name})
    for e in errors:
        messages.error(request, e)
    return redirect("template_list")


@login_required
def template_detail(request, pk):
    template = selectors.template_detail_for(actor=request.user, pk=pk)
    can_edit = _can(request, "template.edit", template.team)
    if request.method == "POST":
        form = TemplateEditForm(request.POST)
        if form.is_valid():
            try:
                services.template_update(template=template, user=request.user, name=form.cleaned_data["name"],
                                         tags=form.cleaned_data["tags"])
            except PermissionDenied as e:
                messages.error(request, str(e))
            else:
                messages.success(request, _("Template saved."))
                return redirect("template_detail", pk=template.pk)
    else:
        form = TemplateEditForm(initial={"name": template.name, "tags": ", ".join(template.tags or [])})
    context = {
        "template": template, "form": form, "can_edit": can_edit,
        "can_delete": _can(request, "template.delete", template.team),
        "recent_renders": template.renders.select_related("job").order_by("-created")[:10],
        "preview_note": previews.web_preview_note(template),
        "playable": previews.web_preview_state(template) in ("original", "preview"),
        "codecs": {"video": previews.codec_name(template.video_codec), "audio": previews.codec_name(template.audio_codec),
                   "container": previews.container_name(template)},
    }
    return render(request, "jobs/template_detail.html", context)


@login_required
@require_POST
def template_delete(request, pk):
    template = selectors.template_detail_for(actor=request.user, pk=pk)
    try:
        services.template_delete(template=template, user=request.user)
    except PermissionDenied as e:
        messages.error(request, str(e))
        return redirect("template_detail", pk=pk)
    messages.success(request, _("Template deleted."))
    return redirect("template_list")


@login_required
@require_GET
def template_poster(request, pk):
    template = selectors.template_detail_for(actor=request.user, pk=pk)
    if not template.poster:
        raise Http404
    return files.serve_media(request, template.poster, content_type="image/jpeg")


@login_required
@require_GET
def template_video(request, pk):
    template = selectors.template_detail_for(actor=request.user, pk=pk)
    if template.preview and not previews.web_playable(template):  # the browser's copy (HEVC, ...)
        return files.serve_media(request, template.preview, filename=f"{template.name}-preview.mp4", content_type="video/mp4")
    name = template.original_filename or f"{template.name}{Path(template.file.name).suffix}"
    content_type = "video/mp4" if Path(template.file.name).suffix.lower() in (".mp4", ".m4v", ".mov") else "application/octet-stream"
    return files.serve_media(request, template.file, filename=name, content_type=content_type,
                            attachment=content_type != "video/mp4")
