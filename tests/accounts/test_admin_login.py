"""/admin/login/ is allauth's sign-in (issue 17, Medium 3): the probe guessed 25 wrong superuser
passwords there, then the right one was accepted while allauth had the account locked."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "admin-correct-horse-7"


@pytest.fixture
def superuser():
    from allauth.account.models import EmailAddress

    from accounts.models import User

    user = User.objects.create_superuser(email="root@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def _clear_cache():
    from django.core.cache import cache

    client = cache._cache.get_client(None, write=True)
    keys = list(client.scan_iter(match=cache.make_key("*")))
    if keys:
        client.delete(*keys)


def test_admin_login_form_does_not_sign_anyone_in(superuser):
    client = Client()
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    # Posting the right credentials to the admin's form does nothing: there is no such form.
    response = client.post("/admin/login/", {"username": superuser.email, "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_admin_sign_in_has_allauths_brute_force_limit(superuser):
    _clear_cache()
    client = Client()
    login = reverse("account_login")
    for i in range(25):
        client.post(login, {"login": superuser.email, "password": f"wrong-{i}"})
    response = client.post(login, {"login": superuser.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert response.status_code == 429 or "Too many failed login attempts" in response.content.decode()
    response = client.post("/admin/login/", {"username": superuser.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    _clear_cache()


def test_staff_reach_the_admin_after_signing_in_through_allauth(superuser):
    _clear_cache()
    client = Client()
    response = client.post(reverse("account_login") + "?next=/admin/", {"login": superuser.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/login/").status_code == 302  # already signed in: on to the admin


def test_signed_in_non_staff_get_403_at_the_admin_login(cast):
    client = Client()
    client.force_login(cast.alice)
    assert client.get("/admin/login/").status_code == 403
