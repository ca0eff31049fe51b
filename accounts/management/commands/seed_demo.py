"""`manage.py seed_demo`: the demo team and its owner login. Idempotent: run it on every start."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from django.urls import reverse

from accounts.services import demo_seed

DEMO_EMAIL = "demo@example.com"


class Command(BaseCommand):
    help = "Create (or refresh) team 'Demo' with the verified owner login demo@example.com."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=None, help="defaults to DEMO_PASSWORD (env), else 'mouthpiece-demo'")

    def handle(self, *args, password=None, **options):
        password = password or settings.DEMO_PASSWORD
        user, team, created = demo_seed(email=DEMO_EMAIL, password=password)
        verb = "created" if created else "refreshed"
        login_url = settings.SITE_URL.rstrip("/") + reverse("account_login")
        self.stdout.write(self.style.SUCCESS(f"Demo login {verb}: team '{team.name}' ({team.slug})"))
        self.stdout.write(f"  URL:      {login_url}")
        self.stdout.write(f"  Email:    {user.email}")
        self.stdout.write(f"  Password: {password}")
