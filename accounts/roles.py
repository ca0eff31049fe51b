"""What each role may do: the one place where it is written down.

`role_can(role, action)` is used by every door (portal views, API, admin-side services).
"""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

OWNER, ADMIN, MEMBER, VIEWER = "owner", "admin", "member", "viewer"
ROLES = (OWNER, ADMIN, MEMBER, VIEWER)

_ALL = {OWNER, ADMIN, MEMBER, VIEWER}
_WRITERS = {OWNER, ADMIN, MEMBER}
_ADMINS = {OWNER, ADMIN}

PERMISSIONS: dict[str, set[str]] = {
    "team.view": _ALL,                  # see the team's templates, jobs, videos, usage
    "template.upload": _WRITERS,
    "template.edit": _WRITERS,
    "template.delete": _ADMINS,
    "job.create": _WRITERS,
    "job.cancel": _WRITERS,
    "job.retry": _WRITERS,
    "job.delete": _ADMINS,
    "share.create": _WRITERS,
    "share.revoke": _WRITERS,
    "member.invite": _ADMINS,
    "member.change_role": _ADMINS,
    "member.remove": _ADMINS,
    "apikey.manage": _ADMINS,
    "webhook.manage": _ADMINS,
    "team.rename": _ADMINS,
    "team.delete": {OWNER},
    "owner.grant": {OWNER},             # only an owner makes another owner
}


ROLE_LABELS = {OWNER: _("Owner"), ADMIN: _("Admin"), MEMBER: _("Member"), VIEWER: _("Viewer")}


def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


def role_can(role: str | None, action: str) -> bool:
    if action not in PERMISSIONS:
        raise KeyError(f"unknown action {action!r}")
    return role in PERMISSIONS[action]
