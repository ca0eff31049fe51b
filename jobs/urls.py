from django.urls import path

from jobs import views, views_templates

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("samples/add/", views.samples_add, name="samples_add"),
    path("templates/", views_templates.template_list, name="template_list"),
    path("templates/upload/", views_templates.template_upload, name="template_upload"),
    path("templates/<uuid:pk>/", views_templates.template_detail, name="template_detail"),
    path("templates/<uuid:pk>/delete/", views_templates.template_delete, name="template_delete"),
    path("templates/<uuid:pk>/poster.jpg", views_templates.template_poster, name="template_poster"),
    path("templates/<uuid:pk>/video/", views_templates.template_video, name="template_video"),
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/new/", views.job_new, name="job_new"),
    path("jobs/<uuid:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<uuid:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<uuid:pk>/zip/", views.job_zip, name="job_zip"),
    path("renders/<uuid:pk>/video/", views.render_video, name="render_video"),
    path("renders/<uuid:pk>/download/", views.render_download, name="render_download"),
    path("renders/<uuid:pk>/log/", views.render_log, name="render_log"),
    path("renders/<uuid:pk>/cancel/", views.render_cancel, name="render_cancel"),
    path("renders/<uuid:pk>/retry/", views.render_retry, name="render_retry"),
    path("gallery/", views.gallery, name="gallery"),
    path("gallery/selected/", views.gallery_bulk, name="gallery_bulk"),
]
