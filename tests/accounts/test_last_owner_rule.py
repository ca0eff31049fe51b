"""The last-owner rule is one service (accounts.services.last_owner_check) that the portal's
services and the admin both call."""
from __future__ import annotations

import inspect

import pytest
from django.core.exceptions import ValidationError

from accounts import admin as accounts_admin
from accounts import services
from accounts.models import Membership


def test_rule():
    services.last_owner_check(owners_before={1, 2}, owners_after={2})
    services.last_owner_check(owners_before=set(), owners_after=set())  # a team without owners stays as it is
    with pytest.raises(ValidationError) as e:
        services.last_owner_check(owners_before={1}, owners_after=set())
    assert e.value.code == "last_owner"


def test_membership_helpers(cast):
    alice = Membership.objects.get(team=cast.acme, user=cast.alice)
    bob = Membership.objects.get(team=cast.acme, user=cast.bob)
    assert services.membership_is_last_owner(membership=alice)
    assert not services.membership_is_last_owner(membership=bob)
    with pytest.raises(ValidationError):
        services.membership_change_check(membership=alice, role="admin")
    services.membership_change_check(membership=bob, role="owner")
    Membership.objects.filter(pk=bob.pk).update(role="owner")
    assert not services.membership_is_last_owner(membership=alice)


def test_the_admin_has_no_rule_of_its_own():
    source = inspect.getsource(accounts_admin)
    assert "last_owner_check" in source and "membership_is_last_owner" in source
    assert "at least one owner" not in source
