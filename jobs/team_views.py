"""Team pages that need the jobs app: the API page (/team/api/: API keys, the default webhook
URL and signing secret, recent webhook deliveries; everyone in the team sees it, only admins
change anything) and the usage page (/usage/: plan limits against what the team has used).
They live here, not in accounts, because accounts sits below jobs."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch
from django.utils.translation import gettext as _

from accounts.api_keys import apikey_create, apikey_revoke, apikeys_for_team
from accounts.models import ApiKey
from jobs.selectors import priority_labels
from jobs.usage import team_usage
from jobs.webhooks import WebhookUrlRefused, webhook_deliveries_for_team, webhook_secret_rotate, webhook_url_set


@login_required
def team_api(request):
    membership = request.membership
    if not membership:
        raise Http404
    team = membership.team
    context = {"team": team, "can_manage_keys": membership.can("apikey.manage"),
               "can_manage_webhooks": membership.can("webhook.manage")}
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        needed = "webhook.manage" if action in ("webhook_url", "rotate_secret") else "apikey.manage"
        if not membership.can(needed):
            return HttpResponseForbidden(_("Only team admins can change API keys and webhooks."))
        if action == "create_key":
            key, plaintext = apikey_create(team=team, name=request.POST.get("name", ""), created_by=request.user)
            # Shown in this response only; never stored in plaintext or put in a message cookie.
            context.update(new_key=key, new_key_plaintext=plaintext)
        elif action == "revoke_key":
            try:
                key = ApiKey.objects.get(team=team, pk=request.POST.get("key"))
            except (ApiKey.DoesNotExist, ValueError, ValidationError):
                raise Http404 from None
            apikey_revoke(key=key)
            messages.success(request, _("Key %(prefix)s… revoked; requests with it now get 401.") % {"prefix": key.prefix})
            return redirect("team_api")
        elif action == "webhook_url":
            try:
                secret_created = webhook_url_set(team=team, url=request.POST.get("webhook_url", ""))
            except WebhookUrlRefused as e:
                context["webhook_error"] = str(e)
                context["webhook_url_value"] = request.POST.get("webhook_url", "")
                status = 400
            else:
                messages.success(request, _("Webhook URL saved."))
                if secret_created:
                    # The secret itself is never put in a message cookie: rotating shows one once.
                    messages.info(request, _("A signing secret was created for it: rotate it below to see and copy one."))
                return redirect("team_api")
        elif action == "rotate_secret":
            context["new_secret"] = webhook_secret_rotate(team=team)
        else:
            return HttpResponseForbidden(_("Unknown action."))
    context.update(
        keys=apikeys_for_team(team=team),
        deliveries=webhook_deliveries_for_team(team=team, limit=30),
    )
    context.setdefault("webhook_url_value", team.webhook_url)
    return render(request, "accounts/team_api.html", context, status=status)


@login_required
def usage(request):
    membership = request.membership
    if not membership:
        try:
            return redirect("team_create")
        except NoReverseMatch:
            return redirect("/")
    team = membership.team
    figures = team_usage(team=team)
    return render(request, "accounts/usage.html", {"team": team, "membership": membership, "usage": figures,
                                                   "priority_labels": priority_labels(figures.priorities)})
