from django.urls import path

from accounts import views

urlpatterns = [
    path("team/", views.team_settings, name="team_settings"),
    path("team/switch/", views.team_switch, name="team_switch"),
    path("teams/new/", views.team_create, name="team_create"),
    path("team/members/<int:pk>/role/", views.member_role, name="member_role"),
    path("team/members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("team/invitations/", views.invitation_create, name="invitation_create"),
    path("team/invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
