from django.urls import path

from jobs import sharing_views

urlpatterns = [
    path("shares/new/", sharing_views.share_create, name="share_create"),
    path("shares/<uuid:pk>/revoke/", sharing_views.share_revoke, name="share_revoke"),
    path("s/<str:token>/", sharing_views.share_view, name="share_view"),
    path("s/<str:token>/video/<uuid:render_id>/", sharing_views.share_video, name="share_video"),
    path("s/<str:token>/download/<uuid:render_id>/", sharing_views.share_download, name="share_download"),
    path("s/<str:token>/poster/<uuid:render_id>/", sharing_views.share_poster, name="share_poster"),
]
