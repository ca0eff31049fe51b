from django.urls import path

from jobs.consumers import JobConsumer
from jobs.library_live import LibraryConsumer

websocket_urlpatterns: list = [
    path("ws/jobs/<uuid:job_id>/", JobConsumer.as_asgi()),
    path("ws/teams/<int:team_id>/templates/", LibraryConsumer.as_asgi()),
]
