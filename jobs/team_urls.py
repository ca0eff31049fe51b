"""The team pages that belong to jobs (URL names and paths as they always were)."""
from django.urls import path

from jobs import team_views

urlpatterns = [
    path("team/api/", team_views.team_api, name="team_api"),
    path("usage/", team_views.usage, name="usage"),
]
