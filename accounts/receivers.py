"""Membership changes that take keys with them, whichever door made the change (portal
services, the admin's forms, inlines and bulk delete, a user deleted with their memberships):
a member removed, or moved below the roles that manage API keys, loses the keys they created.
Connected in AccountsConfig.ready()."""
from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import receiver

from accounts.api_keys import apikeys_revoke_created_by
from accounts.models import ApiKey, Membership
from accounts.roles import role_can

KEY_ACTION = "apikey.manage"


@receiver(pre_save, sender=Membership, dispatch_uid="membership-role-before")
def _remember_role(sender, instance: Membership, raw=False, **kwargs):
    instance._role_before = None if raw or instance.pk is None else (
        Membership.objects.filter(pk=instance.pk).values_list("role", flat=True).first())


@receiver(post_save, sender=Membership, dispatch_uid="membership-demoted-keys")
def _demoted(sender, instance: Membership, created=False, raw=False, **kwargs):
    before = getattr(instance, "_role_before", None)
    if raw or created or before is None:
        return
    if role_can(before, KEY_ACTION) and not role_can(instance.role, KEY_ACTION):
        apikeys_revoke_created_by(team_id=instance.team_id, user_id=instance.user_id,
                                  reason=ApiKey.RevokedReason.CREATOR_DEMOTED)


# pre_delete, not post_delete: deleting a user nulls ApiKey.created_by before the memberships'
# post_delete runs; both happen inside the deletion's transaction.
@receiver(pre_delete, sender=Membership, dispatch_uid="membership-removed-keys")
def _removed(sender, instance: Membership, **kwargs):
    with transaction.atomic():
        apikeys_revoke_created_by(team_id=instance.team_id, user_id=instance.user_id,
                                  reason=ApiKey.RevokedReason.CREATOR_REMOVED)
