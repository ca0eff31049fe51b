from accounts.models import Membership


def current_team(request):
    user = getattr(request, "user", None)
    if not getattr(user, "is_authenticated", False):
        return {}
    membership = getattr(request, "membership", None)
    return {
        "current_membership": membership if membership else None,
        "current_team": membership.team if membership else None,
        "my_memberships": Membership.objects.filter(user=user).select_related("team").order_by("team__name"),
    }
