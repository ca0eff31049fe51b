"""API keys die with their creator's right to make them (issue 17, Medium 5): the probe's removed
admin's key still listed jobs and downloaded renders. Removing a member, or moving them below
admin, revokes the keys they created in that team, through every door, and says so."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.api_keys import apikey_create
from accounts.models import ApiKey, Membership

pytestmark = pytest.mark.django_db


def _bearer(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def bob_admin(cast):
    """bob is an admin of acme with a key of his own; alice has one too."""
    Membership.objects.filter(team=cast.acme, user=cast.bob).update(role="admin")
    bobs, bobs_plain = apikey_create(team=cast.acme, name="bob's CI", created_by=cast.bob)
    alices, alices_plain = apikey_create(team=cast.acme, name="alice's CMS", created_by=cast.alice)
    assert _bearer(bobs_plain).get(reverse("api_job_list")).status_code == 200
    return bobs, bobs_plain, alices, alices_plain


def test_removing_a_member_through_the_team_page_revokes_their_keys(cast, bob_admin):
    bobs, bobs_plain, alices, alices_plain = bob_admin
    client = Client()
    client.force_login(cast.alice)
    membership = Membership.objects.get(team=cast.acme, user=cast.bob)
    response = client.post(reverse("member_remove", args=[membership.pk]), follow=True)
    assert "The API key they created was revoked." in response.content.decode()
    assert _bearer(bobs_plain).get(reverse("api_job_list")).status_code == 401
    assert _bearer(alices_plain).get(reverse("api_job_list")).status_code == 200
    bobs.refresh_from_db()
    assert bobs.revoked_at and bobs.revoked_reason == ApiKey.RevokedReason.CREATOR_REMOVED
    page = client.get(reverse("team_api")).content.decode()
    assert "revoked: the person who created it left the team" in page


def test_demotion_below_admin_revokes_their_keys_and_promotion_does_not(cast, bob_admin):
    bobs, bobs_plain, _alices, alices_plain = bob_admin
    client = Client()
    client.force_login(cast.alice)
    membership = Membership.objects.get(team=cast.acme, user=cast.bob)
    response = client.post(reverse("member_role", args=[membership.pk]), {"role": "owner"}, follow=True)
    assert "revoked" not in response.content.decode().split("is now", 1)[1][:200]
    assert _bearer(bobs_plain).get(reverse("api_job_list")).status_code == 200
    response = client.post(reverse("member_role", args=[membership.pk]), {"role": "member"}, follow=True)
    assert "The API key they created was revoked." in response.content.decode()
    assert _bearer(bobs_plain).get(reverse("api_job_list")).status_code == 401
    bobs.refresh_from_db()
    assert bobs.revoked_reason == ApiKey.RevokedReason.CREATOR_DEMOTED
    assert _bearer(alices_plain).get(reverse("api_job_list")).status_code == 200


def test_a_member_who_leaves_loses_their_keys_in_that_team_only(cast, bob_admin):
    bobs, bobs_plain, *_ = bob_admin
    Membership.objects.create(team=cast.globex, user=cast.bob, role="admin")
    globex_key, globex_plain = apikey_create(team=cast.globex, name="bob at globex", created_by=cast.bob)
    client = Client()
    client.force_login(cast.bob)
    client.post(reverse("member_remove", args=[Membership.objects.get(team=cast.acme, user=cast.bob).pk]))
    assert _bearer(bobs_plain).get(reverse("api_job_list")).status_code == 401
    assert _bearer(globex_plain).get(reverse("api_job_list")).status_code == 200


@pytest.fixture
def staff_client(db):
    from accounts.models import User

    staff = User.objects.create_superuser(email="ops@example.com", password="ops-password-9")
    client = Client()
    client.force_login(staff)
    return client


def test_admin_bulk_delete_of_memberships_revokes_keys(cast, bob_admin, staff_client):
    bobs, bobs_plain, *_ = bob_admin
    membership = Membership.objects.get(team=cast.acme, user=cast.bob)
    response = staff_client.post(reverse("admin:accounts_membership_changelist"),
                                 {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert _bearer(bobs_plain).get(reverse("api_job_list")).status_code == 401
    page = staff_client.get(reverse("admin:accounts_apikey_changelist")).content.decode()
    assert "revoked: the person who created it left the team" in page


def test_admin_role_change_in_the_team_inline_revokes_keys(cast, bob_admin, staff_client):
    from django.forms.models import model_to_dict

    bobs, bobs_plain, *_ = bob_admin
    team = cast.acme
    url = reverse("admin:accounts_team_change", args=[team.pk])
    memberships = list(Membership.objects.filter(team=team).order_by("pk"))
    data = {k: ("" if v is None else v) for k, v in model_to_dict(team).items() if k not in ("id",)}
    data.update({"memberships-TOTAL_FORMS": len(memberships), "memberships-INITIAL_FORMS": len(memberships),
                 "memberships-MIN_NUM_FORMS": 0, "memberships-MAX_NUM_FORMS": 1000})
    for i, m in enumerate(memberships):
        data.update({f"memberships-{i}-id": m.pk, f"memberships-{i}-team": team.pk, f"memberships-{i}-user": m.user_id,
                     f"memberships-{i}-role": "viewer" if m.user_id == cast.bob.pk else m.role})
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Membership.objects.get(team=team, user=cast.bob).role == "viewer"
    assert _bearer(bobs_plain).get(reverse("api_job_list")).status_code == 401
    bobs.refresh_from_db()
    assert bobs.revoked_reason == ApiKey.RevokedReason.CREATOR_DEMOTED


def test_deleting_the_user_revokes_their_keys(cast, bob_admin):
    bobs, bobs_plain, *_ = bob_admin
    cast.bob.delete()
    assert _bearer(bobs_plain).get(reverse("api_job_list")).status_code == 401
    bobs.refresh_from_db()
    assert bobs.revoked_at and bobs.created_by is None
