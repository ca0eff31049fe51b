from django.core.management.base import BaseCommand, CommandError

from accounts.api_keys import apikey_create
from accounts.models import Team


class Command(BaseCommand):
    help = "Create an API key for a team and print it (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="team slug")
        parser.add_argument("--name", required=True, help="a name to recognise the key by")

    def handle(self, *args, team, name, **options):
        try:
            team_obj = Team.objects.get(slug=team)
        except Team.DoesNotExist:
            raise CommandError(f"No team with slug {team!r}.") from None
        key, plaintext = apikey_create(team=team_obj, name=name)
        self.stderr.write(f"Created key {key.prefix}… ({key.name}) for {team_obj.name}. Store it now; it is not shown again.")
        self.stdout.write(plaintext)
