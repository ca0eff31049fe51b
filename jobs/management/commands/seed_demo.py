"""`manage.py seed_demo`: the demo team and its owner login (accounts.services.demo_seed), then
the sample templates (jobs.samples). Idempotent: run it on every start. It lives in jobs because
it seeds both apps and accounts sits below jobs."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from django.urls import reverse

from accounts.services import demo_seed
from jobs.samples import samples_seed

DEMO_EMAIL = "demo@example.com"


class Command(BaseCommand):
    help = ("Create (or refresh) team 'Demo' with the verified owner login demo@example.com, the sample "
            "templates (samples/), and, outside production, make that login an administrator.")

    def add_arguments(self, parser):
        parser.add_argument("--password", default=None, help="defaults to DEMO_PASSWORD (env), else 'mouthpiece-demo'")
        parser.add_argument("--no-samples", action="store_true", help="do not add the sample templates")

    def handle(self, *args, password=None, no_samples=False, **options):
        password = password or settings.DEMO_PASSWORD
        admin = not settings.PRODUCTION  # a local `make run`: /admin/ with the same login
        user, team, created = demo_seed(email=DEMO_EMAIL, password=password, admin=admin)
        verb = "created" if created else "refreshed"
        login_url = settings.SITE_URL.rstrip("/") + reverse("account_login")
        self.stdout.write(self.style.SUCCESS(f"Demo login {verb}: team '{team.name}' ({team.slug})"))
        self.stdout.write(f"  URL:      {login_url}")
        self.stdout.write(f"  Email:    {user.email}")
        self.stdout.write(f"  Password: {password}")
        if admin:
            self.stdout.write(f"  Admin:    {settings.SITE_URL.rstrip('/')}{reverse('admin:index')} (the demo login is an administrator)")
        if not no_samples:
            added = samples_seed(team=team, user=user)
            self.stdout.write(f"  Samples:  {len(added)} sample template(s) added" if added else "  Samples:  already there")
