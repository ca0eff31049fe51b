"""Small template helpers shared by every portal page: `{% load portal %}`."""
from __future__ import annotations

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import mark_safe

from accounts.roles import role_label as _role_label

register = template.Library()


@register.simple_tag
def url_if_exists(name: str, *args, **kwargs) -> str:
    """The URL for `name`, or "" while that page does not exist yet.

    The portal is built by several parts; the shared header must keep rendering while one of
    them has not registered its URL names.
    """
    try:
        return reverse(name, args=args or None, kwargs=kwargs or None)
    except NoReverseMatch:
        return ""


@register.filter
def role_label(role: str) -> str:
    """The translated name of a role ("owner" → "Owner" / "所有者")."""
    return _role_label(role)


@register.filter
def can(membership, action: str) -> bool:
    """`{% if current_membership|can:"member.invite" %}` — the role table, in templates."""
    return bool(membership) and membership.can(action)


@register.simple_tag(takes_context=True)
def nav_active(context, *names: str) -> str:
    """'aria-current="page"' when the current URL name is one of `names` (for nav links)."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    if match and match.url_name in names:
        return mark_safe('aria-current="page"')
    return ""
