from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from config.health import healthz
from config.pages import favicon, status_page

# The admin has no sign-in form of its own: /admin/login/ sends visitors to allauth's, with its
# rate limits and lockout (5 failures per 5 minutes per address and per account); a signed-in
# non-staff user gets a 403.
admin.site.login = secure_admin_login(admin.site.login)

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
    path("", include("jobs.team_urls")),
]
