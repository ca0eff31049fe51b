"""The team usage page: plan limits against what the team has used (reads only)."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch

from accounts.usage import team_usage


@login_required
def usage(request):
    membership = request.membership
    if not membership:
        try:
            return redirect("team_create")
        except NoReverseMatch:
            return redirect("/")
    team = membership.team
    return render(request, "accounts/usage.html", {"team": team, "membership": membership, "usage": team_usage(team=team)})
