"""The test cast (DESIGN.md): team "acme" with alice (owner), bob (member), vera (viewer);
team "globex" with charlie (owner). Media come from ../shared/media."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
PASSWORD = "correct-horse-battery-9"


@pytest.fixture(scope="session")
def media_dir() -> Path:
    assert MEDIA.is_dir(), f"test media missing: {MEDIA}"
    return MEDIA


@pytest.fixture(autouse=True)
def _media_root(request, tmp_path_factory):
    """Each Django test writes its media under its own folder (outside the test's tmp_path,
    which stays empty for the test's own files). The engine's tests (tests/lipsync) don't use
    Django at all, so they don't get (or pay for) the settings fixture."""
    if "tests/lipsync" in str(request.node.path).replace("\\", "/"):
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    yield


def _user(email: str):
    from accounts.models import User
    from allauth.account.models import EmailAddress

    user = User.objects.create_user(email=email, password=PASSWORD, display_name=email.split("@")[0].title())
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


@pytest.fixture
def cast(db):
    """A namespace with the two teams and their four people."""
    from types import SimpleNamespace

    from accounts.models import Membership, Team

    acme = Team.objects.create(name="Acme", slug="acme")
    globex = Team.objects.create(name="Globex", slug="globex")
    alice, bob, vera, charlie = (_user(f"{n}@example.com") for n in ("alice", "bob", "vera", "charlie"))
    Membership.objects.create(team=acme, user=alice, role="owner")
    Membership.objects.create(team=acme, user=bob, role="member")
    Membership.objects.create(team=acme, user=vera, role="viewer")
    Membership.objects.create(team=globex, user=charlie, role="owner")
    return SimpleNamespace(acme=acme, globex=globex, alice=alice, bob=bob, vera=vera, charlie=charlie, password=PASSWORD)


@pytest.fixture
def redis_conn():
    """The real Redis the settings point at (embedded or REDIS_URL), emptied for the test."""
    import django_rq

    conn = django_rq.get_connection("default")
    conn.flushdb()
    yield conn
    conn.flushdb()
