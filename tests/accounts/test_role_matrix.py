"""The role table, action by action, plus real requests through the team pages."""
import pytest
from django.urls import reverse

from accounts.models import Invitation, Membership
from accounts.roles import PERMISSIONS, ROLES, role_can

O, A, M, V = "owner", "admin", "member", "viewer"

# Written out independently of accounts/roles.py: a change there must be a change here too.
EXPECTED = {
    "team.view": {O, A, M, V},
    "template.upload": {O, A, M},
    "template.edit": {O, A, M},
    "template.delete": {O, A},
    "job.create": {O, A, M},
    "job.cancel": {O, A, M},
    "job.retry": {O, A, M},
    "job.delete": {O, A},
    "share.create": {O, A, M},
    "share.revoke": {O, A, M},
    "member.invite": {O, A},
    "member.change_role": {O, A},
    "member.remove": {O, A},
    "apikey.manage": {O, A},
    "webhook.manage": {O, A},
    "team.rename": {O, A},
    "team.delete": {O},
    "owner.grant": {O},
}


def test_every_action_is_in_the_expected_table():
    assert set(PERMISSIONS) == set(EXPECTED)


@pytest.mark.parametrize("action", sorted(EXPECTED))
@pytest.mark.parametrize("role", ROLES)
def test_role_can(role, action):
    assert role_can(role, action) is (role in EXPECTED[action])
    assert Membership(role=role).can(action) is (role in EXPECTED[action])


def test_no_role_can_nothing_and_unknown_action_is_an_error():
    assert not role_can(None, "team.view")
    with pytest.raises(KeyError):
        role_can(O, "team.fly")


def _membership(cast, user):
    return Membership.objects.get(team=cast.acme, user=user)


def test_viewer_cannot_invite_or_change_roles(cast, login, mailoutbox):
    client = login(cast.vera)
    r = client.post(reverse("invitation_create"), {"email": "new@example.com", "role": "member"})
    assert r.status_code == 403
    assert not Invitation.objects.exists() and mailoutbox == []
    r = client.post(reverse("member_role", args=[_membership(cast, cast.bob).pk]), {"role": "admin"})
    assert r.status_code == 403
    assert _membership(cast, cast.bob).role == M
    r = client.post(reverse("member_remove", args=[_membership(cast, cast.bob).pk]))
    assert r.status_code == 403
    assert Membership.objects.filter(team=cast.acme, user=cast.bob).exists()
    # and the page offers none of it
    page = client.get(reverse("team_settings")).content.decode()
    assert reverse("invitation_create") not in page
    assert reverse("member_role", args=[_membership(cast, cast.bob).pk]) not in page


def test_member_cannot_manage_either(cast, login):
    client = login(cast.bob)
    r = client.post(reverse("member_role", args=[_membership(cast, cast.vera).pk]), {"role": "member"})
    assert r.status_code == 403
    assert _membership(cast, cast.vera).role == V


def test_admin_can_invite_change_roles_and_remove(cast, login, mailoutbox):
    _membership(cast, cast.bob).__class__.objects.filter(team=cast.acme, user=cast.bob).update(role=A)
    client = login(cast.bob)
    r = client.post(reverse("invitation_create"), {"email": "dora@example.com", "role": "member"})
    assert r.status_code == 302
    assert Invitation.objects.filter(team=cast.acme, email="dora@example.com").exists()
    assert len(mailoutbox) == 1
    r = client.post(reverse("member_role", args=[_membership(cast, cast.vera).pk]), {"role": "member"})
    assert r.status_code == 302
    assert _membership(cast, cast.vera).role == M
    r = client.post(reverse("member_remove", args=[_membership(cast, cast.vera).pk]))
    assert r.status_code == 302
    assert not Membership.objects.filter(team=cast.acme, user=cast.vera).exists()


def test_only_an_owner_grants_or_takes_owner(cast, login):
    Membership.objects.filter(team=cast.acme, user=cast.bob).update(role=A)
    client = login(cast.bob)
    # admin: cannot make someone owner, cannot demote or remove the owner, cannot invite an owner
    r = client.post(reverse("member_role", args=[_membership(cast, cast.vera).pk]), {"role": "owner"})
    assert r.status_code == 403 and _membership(cast, cast.vera).role == V
    r = client.post(reverse("member_role", args=[_membership(cast, cast.alice).pk]), {"role": "member"})
    assert r.status_code == 403 and _membership(cast, cast.alice).role == O
    r = client.post(reverse("member_remove", args=[_membership(cast, cast.alice).pk]))
    assert r.status_code == 403 and _membership(cast, cast.alice).role == O
    r = client.post(reverse("invitation_create"), {"email": "boss@example.com", "role": "owner"})
    assert not Invitation.objects.filter(email="boss@example.com").exists()
    # owner: can
    client = login(cast.alice)
    r = client.post(reverse("member_role", args=[_membership(cast, cast.vera).pk]), {"role": "owner"})
    assert r.status_code == 302 and _membership(cast, cast.vera).role == O


def test_last_owner_cannot_be_demoted_or_removed_or_leave(cast, login):
    client = login(cast.alice)
    mine = _membership(cast, cast.alice)
    r = client.post(reverse("member_role", args=[mine.pk]), {"role": "admin"}, follow=True)
    assert _membership(cast, cast.alice).role == O
    assert "at least one owner" in r.content.decode()
    r = client.post(reverse("member_remove", args=[mine.pk]), follow=True)
    assert Membership.objects.filter(pk=mine.pk).exists()
    assert "at least one owner" in r.content.decode()
    # with a second owner, alice may step down
    Membership.objects.filter(team=cast.acme, user=cast.bob).update(role=O)
    client.post(reverse("member_role", args=[mine.pk]), {"role": "admin"})
    assert _membership(cast, cast.alice).role == A


def test_last_owner_rule_in_the_service(cast):
    from django.core.exceptions import ValidationError

    from accounts.services import membership_remove

    with pytest.raises(ValidationError) as exc:
        membership_remove(actor=cast.alice, membership=_membership(cast, cast.alice))
    assert exc.value.code == "last_owner"


def test_member_may_leave(cast, login):
    client = login(cast.bob)
    r = client.post(reverse("member_remove", args=[_membership(cast, cast.bob).pk]))
    assert r.status_code == 302
    assert not Membership.objects.filter(team=cast.acme, user=cast.bob).exists()
