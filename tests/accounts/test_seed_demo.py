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


def test_seed_demo_adds_the_samples_once_and_an_admin_login(db, client, settings, redis_conn):
    from jobs.models import Template

    settings.DEMO_PASSWORD = "mouthpiece-demo"
    out = _seed()
    assert "Admin:" in out and "/admin/" in out and "2 sample template(s) added" in out
    assert "already there" in _seed(no_samples=False)
    team = Team.objects.get(slug="demo")
    samples = Template.objects.filter(team=team)
    assert sorted(t.name for t in samples) == ["Sample presenter 1", "Sample presenter 2"]
    assert all(t.poster and t.tags == ["sample"] for t in samples)
    user = User.objects.get(email="demo@example.com")
    assert user.is_staff and user.is_superuser
    client.force_login(user)
    assert client.get("/admin/").status_code == 200


def test_no_admin_login_in_production(db, settings):
    settings.PRODUCTION = True
    _seed(no_samples=True)
    assert not User.objects.get(email="demo@example.com").is_staff
