"""Teams: creating, switching, the team page, and tenant isolation."""
from django.urls import reverse

from accounts.middleware import SESSION_KEY
from accounts.models import Membership, Team


def test_team_create_makes_creator_owner_and_switches(cast, login):
    client = login(cast.bob)
    r = client.post(reverse("team_create"), {"name": "Bob's Lab"})
    assert r.status_code == 302
    team = Team.objects.get(name="Bob's Lab")
    assert team.slug == "bobs-lab"
    assert Membership.objects.get(team=team, user=cast.bob).role == "owner"
    assert client.session[SESSION_KEY] == team.pk
    # a user may belong to many teams; the switcher lists both
    html = client.get(reverse("team_settings")).content.decode()
    assert "Bob&#x27;s Lab" in html and "Acme" in html


def test_team_slugs_stay_unique(cast):
    from accounts.services import team_create

    assert team_create(name="Acme", owner=cast.charlie).slug == "acme-2"


def test_team_switch(cast, login):
    Membership.objects.create(team=cast.globex, user=cast.bob, role="viewer")
    client = login(cast.bob)
    r = client.post(reverse("team_switch"), {"team": cast.globex.pk, "next": "/team/"})
    assert r.status_code == 302 and r["Location"] == "/team/"
    assert client.session[SESSION_KEY] == cast.globex.pk
    html = client.get(reverse("team_settings")).content.decode()
    assert "Globex" in html and "charlie@example.com" in html


def test_team_switch_to_a_team_you_are_not_in_is_404(cast, login):
    client = login(cast.charlie)
    r = client.post(reverse("team_switch"), {"team": cast.acme.pk})
    assert r.status_code == 404
    assert client.session.get(SESSION_KEY) != cast.acme.pk
    assert client.post(reverse("team_switch"), {"team": "abc"}).status_code == 404
    assert client.get(reverse("team_switch")).status_code == 405


def test_team_switch_refuses_offsite_next(cast, login):
    client = login(cast.alice)
    r = client.post(reverse("team_switch"), {"team": cast.acme.pk, "next": "https://evil.example/"})
    assert r.status_code == 302 and "evil" not in r["Location"]


def test_stale_session_team_falls_back_to_own_team(cast, login):
    """A team id left in the session (e.g. after removal) never opens another team."""
    client = login(cast.charlie)
    session = client.session
    session[SESSION_KEY] = cast.acme.pk
    session.save()
    html = client.get(reverse("team_settings")).content.decode()
    assert "Globex" in html and "alice@example.com" not in html


def test_team_settings_lists_members_and_roles(cast, login):
    html = login(cast.alice).get(reverse("team_settings")).content.decode()
    for email in ("alice@example.com", "bob@example.com", "vera@example.com"):
        assert email in html
    assert "charlie@example.com" not in html
    assert reverse("invitation_create") in html


def test_admin_renames_team_viewer_cannot(cast, login):
    r = login(cast.vera).post(reverse("team_settings"), {"team-name": "Hacked"})
    assert r.status_code == 403
    r = login(cast.alice).post(reverse("team_settings"), {"team-name": "Acme Corp"})
    assert r.status_code == 302
    cast.acme.refresh_from_db()
    assert cast.acme.name == "Acme Corp"


def test_user_without_team_is_sent_to_create_one(db, client):
    from tests.conftest import _user

    client.force_login(_user("lone@example.com"))
    r = client.get(reverse("team_settings"))
    assert r.status_code == 302 and r["Location"] == reverse("team_create")
    assert client.get(reverse("team_create")).status_code == 200


def test_anonymous_is_sent_to_login(db, client):
    r = client.get(reverse("team_settings"))
    assert r.status_code == 302 and r["Location"].startswith(reverse("account_login"))


def test_base_layout_for_a_signed_in_user(cast, login):
    html = login(cast.alice).get(reverse("team_settings")).content.decode()
    assert 'href="#main"' in html                    # skip link
    assert 'aria-live="polite"' in html              # messages area
    assert reverse("team_switch") in html            # team switcher
    assert reverse("account_logout") in html         # user menu
    assert 'aria-current="page"' in html             # the Team nav link is marked current
    assert 'aria-controls="site-nav"' in html        # the collapsible nav on phones
