from io import StringIO

from django.core.management import call_command

from accounts.models import Membership, Team, User


def _seed(**kwargs) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **kwargs)
    return out.getvalue()


def test_seed_demo_is_idempotent_and_prints_credentials(db, client, settings):
    settings.DEMO_PASSWORD = "mouthpiece-demo"
    first = _seed()
    second = _seed()
    for out in (first, second):
        assert "demo@example.com" in out and "mouthpiece-demo" in out
        assert "/accounts/login/" in out
    assert User.objects.filter(email="demo@example.com").count() == 1
    assert Team.objects.filter(slug="demo").count() == 1
    team = Team.objects.get(slug="demo")
    assert team.name == "Demo"
    assert Membership.objects.get(team=team).role == "owner"
    user = User.objects.get(email="demo@example.com")
    assert user.emailaddress_set.get().verified
    # the printed credentials work through the real sign-in form (verified: no email step)
    r = client.post("/accounts/login/", {"login": "demo@example.com", "password": "mouthpiece-demo"})
    assert r.status_code == 302 and client.session["_auth_user_id"] == str(user.pk)


def test_seed_demo_password_from_setting(db, settings):
    settings.DEMO_PASSWORD = "other-secret-1"
    assert "other-secret-1" in _seed()
    assert User.objects.get(email="demo@example.com").check_password("other-secret-1")
