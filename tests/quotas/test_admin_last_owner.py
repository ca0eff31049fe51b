"""The Django admin keeps the portal's rule: a team never loses its last owner."""
import pytest
from django.urls import reverse

from accounts.models import Membership


@pytest.fixture
def staff_client(client, cast, django_user_model):
    staff = django_user_model.objects.create_superuser(email="ops@example.com", password=cast.password)
    client.force_login(staff)
    return client


def test_last_owner_cannot_be_demoted_in_the_admin(staff_client, cast):
    owner = Membership.objects.get(team=cast.acme, user=cast.alice)
    url = reverse("admin:accounts_membership_change", args=[owner.pk])
    response = staff_client.post(url, {"team": cast.acme.pk, "user": cast.alice.pk, "role": "member",
                                       "created_0": "2026-01-01", "created_1": "00:00:00"})
    assert response.status_code == 200 and "at least one owner" in response.content.decode()
    owner.refresh_from_db()
    assert owner.role == "owner"


def test_last_owner_cannot_be_deleted_in_the_admin(staff_client, cast):
    owner = Membership.objects.get(team=cast.acme, user=cast.alice)
    bob = Membership.objects.get(team=cast.acme, user=cast.bob)
    response = staff_client.post(reverse("admin:accounts_membership_changelist"),
                                 {"action": "delete_selected", "_selected_action": [owner.pk, bob.pk], "post": "yes"})
    assert response.status_code == 200  # the "cannot delete" page
    assert Membership.objects.filter(pk=owner.pk).exists() and Membership.objects.filter(pk=bob.pk).exists()


def test_a_second_owner_makes_the_first_removable(staff_client, cast):
    Membership.objects.filter(team=cast.acme, user=cast.bob).update(role="owner")
    owner = Membership.objects.get(team=cast.acme, user=cast.alice)
    response = staff_client.post(reverse("admin:accounts_membership_delete", args=[owner.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=owner.pk).exists()


def test_team_page_inline_cannot_demote_the_last_owner(staff_client, cast):
    owner = Membership.objects.get(team=cast.acme, user=cast.alice)
    url = reverse("admin:accounts_team_change", args=[cast.acme.pk])
    page = staff_client.get(url)
    form = page.context["adminform"].form
    data = {k: ("" if v is None else v) for k, v in form.initial.items() if not isinstance(v, (list, dict))}
    data.update({"name": "Acme", "slug": "acme",
                 "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "1",
                 "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
                 "memberships-0-id": owner.pk, "memberships-0-team": cast.acme.pk,
                 "memberships-0-user": cast.alice.pk, "memberships-0-role": "viewer"})
    response = staff_client.post(url, data)
    assert response.status_code == 200 and "at least one owner" in response.content.decode()
    owner.refresh_from_db()
    assert owner.role == "owner"
