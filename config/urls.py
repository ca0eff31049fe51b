from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config.health import healthz
from config.pages import favicon, status_page

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("status/", status_page, name="status"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("accounts.urls")),
    path("", include("jobs.urls")),
    path("api/v1/", include("jobs.api_urls")),
    path("", include("jobs.sharing_urls")),
    path("", include("accounts.api_urls")),
]
