from django.utils.functional import SimpleLazyObject

from accounts.models import Membership

SESSION_KEY = "current_team_id"


def current_membership(request) -> Membership | None:
    """The membership of the team chosen in the team switcher (else the user's first team)."""
    user = getattr(request, "user", None)
    if not getattr(user, "is_authenticated", False):
        return None
    memberships = Membership.objects.filter(user=user).select_related("team").order_by("created")
    team_id = request.session.get(SESSION_KEY)
    chosen = memberships.filter(team_id=team_id).first() if team_id else None
    return chosen or memberships.first()


class CurrentTeamMiddleware:
    """Sets request.membership and request.team (lazily: most static requests never ask)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = SimpleLazyObject(lambda: current_membership(request))
        request.team = SimpleLazyObject(lambda: request.membership.team if request.membership else None)
        return self.get_response(request)
