from django import template

from accounts.access import membership_for
from jobs.sharing import share_links_for_team, sharelink_state

register = template.Library()


@register.simple_tag
def share_links_for(job):
    """The job's share links (its own and its renders'), each with `.state` for the template."""
    links = list(share_links_for_team(team=job.team, job=job)[:100])
    for link in links:
        link.state = sharelink_state(link).value
    return links


@register.simple_tag(takes_context=True)
def share_permissions(context, job):
    membership = membership_for(context["request"].user, job.team)
    return {
        "create": bool(membership and membership.can("share.create")),
        "revoke": bool(membership and membership.can("share.revoke")),
    }
