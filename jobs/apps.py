from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Webhook events follow the render/job "finished" signals sent by jobs.services.
        from jobs.webhooks import connect_signals

        connect_signals()
