from django.urls import path

from accounts import api_views

urlpatterns = [
    path("team/api/", api_views.team_api, name="team_api"),
]
