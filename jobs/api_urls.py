from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from jobs import api

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api_schema"), name="api_redoc"),
    path("templates/", api.TemplateListView.as_view(), name="api_template_list"),
    path("templates/<str:pk>/", api.TemplateDetailView.as_view(), name="api_template_detail"),
    path("jobs/", api.JobListView.as_view(), name="api_job_list"),
    path("jobs/<str:pk>/", api.JobDetailView.as_view(), name="api_job_detail"),
    path("jobs/<str:pk>/cancel/", api.JobCancelView.as_view(), name="api_job_cancel"),
    path("jobs/<str:pk>/retry/", api.JobRetryView.as_view(), name="api_job_retry"),
    path("jobs/<str:pk>/zip/", api.JobZipView.as_view(), name="api_job_zip"),
    path("renders/<str:pk>/", api.RenderDetailView.as_view(), name="api_render_detail"),
    path("renders/<str:pk>/download/", api.RenderDownloadView.as_view(), name="api_render_download"),
    path("renders/<str:pk>/log/", api.RenderLogView.as_view(), name="api_render_log"),
    path("renders/<str:pk>/cancel/", api.RenderCancelView.as_view(), name="api_render_cancel"),
    path("renders/<str:pk>/retry/", api.RenderRetryView.as_view(), name="api_render_retry"),
    path("shares/", api.ShareLinkListView.as_view(), name="api_share_list"),
    path("shares/<str:pk>/", api.ShareLinkDetailView.as_view(), name="api_share_detail"),
    path("usage/", api.UsageView.as_view(), name="api_usage"),
]
