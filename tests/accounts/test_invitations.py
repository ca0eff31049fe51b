"""Invitations: the emailed link, hashed tokens, expiry, the wrong user, reuse and revocation."""
import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Invitation, Membership, User, token_hash
from tests.conftest import _user


def _token_from(mail) -> str:
    match = re.search(r"/invitations/([\w-]+)/", mail.body)
    assert match, mail.body
    return match.group(1)


def test_invitation_email_link_and_hashed_token(cast, login, mailoutbox):
    client = login(cast.alice)
    r = client.post(reverse("invitation_create"), {"email": "Dora@Example.com", "role": "viewer"})
    assert r.status_code == 302
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["dora@example.com"]
    assert "Acme" in mail.subject
    token = _token_from(mail)
    assert mail.body.count("http://testserver/invitations/") == 1
    inv = Invitation.objects.get()
    assert inv.token_hash == token_hash(token) and token not in inv.token_hash
    assert inv.role == "viewer" and inv.invited_by == cast.alice
    # the pending invitation is listed on the team page
    page = client.get(reverse("team_settings")).content.decode()
    assert "dora@example.com" in page


def test_invitation_email_is_translated(cast, login, mailoutbox):
    client = login(cast.alice)
    client.post(reverse("invitation_create"), {"email": "dora@example.com", "role": "member"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "邀请" in mailoutbox[0].subject
    assert "邀请" in mailoutbox[0].body


def test_accept_creates_membership(cast, login):
    dora = _user("dora@example.com")
    _, token = services.invitation_create(actor=cast.alice, team=cast.acme, email="dora@example.com", role="member")
    client = login(dora)
    r = client.get(reverse("invitation_accept", args=[token]))
    assert r.status_code == 200 and "Acme" in r.content.decode()
    assert not Membership.objects.filter(user=dora, team=cast.acme).exists()  # a GET changes nothing
    r = client.post(reverse("invitation_accept", args=[token]))
    assert r.status_code == 302
    m = Membership.objects.get(user=dora, team=cast.acme)
    assert m.role == "member"
    inv = Invitation.objects.get()
    assert inv.accepted_by == dora and inv.accepted_at is not None
    # the new team becomes the current one
    assert client.session["current_team_id"] == cast.acme.pk


def test_already_used(cast, login):
    dora = _user("dora@example.com")
    _, token = services.invitation_create(actor=cast.alice, team=cast.acme, email="dora@example.com")
    services.invitation_accept(token=token, user=dora)
    client = login(dora)
    r = client.post(reverse("invitation_accept", args=[token]))
    assert r.status_code == 410
    assert "already been used" in r.content.decode()
    assert Membership.objects.filter(user=dora, team=cast.acme).count() == 1


def test_expired(cast, login):
    dora = _user("dora@example.com")
    inv, token = services.invitation_create(actor=cast.alice, team=cast.acme, email="dora@example.com")
    Invitation.objects.filter(pk=inv.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client = login(dora)
    r = client.post(reverse("invitation_accept", args=[token]))
    assert r.status_code == 410
    assert "expired" in r.content.decode()
    assert not Membership.objects.filter(user=dora, team=cast.acme).exists()
    with pytest.raises(ValidationError) as exc:
        services.invitation_accept(token=token, user=dora)
    assert exc.value.code == "expired"


def test_wrong_user(cast, login):
    _user("dora@example.com")
    _, token = services.invitation_create(actor=cast.alice, team=cast.acme, email="dora@example.com")
    client = login(cast.charlie)
    r = client.post(reverse("invitation_accept", args=[token]))
    assert r.status_code == 403
    body = r.content.decode()
    assert "dora@example.com" in body and "charlie@example.com" in body
    assert not Membership.objects.filter(user=cast.charlie, team=cast.acme).exists()
    assert Invitation.objects.get().accepted_at is None


def test_revoked(cast, login):
    dora = _user("dora@example.com")
    inv, token = services.invitation_create(actor=cast.alice, team=cast.acme, email="dora@example.com")
    r = login(cast.alice).post(reverse("invitation_revoke", args=[inv.pk]))
    assert r.status_code == 302
    client = login(dora)
    r = client.post(reverse("invitation_accept", args=[token]))
    assert r.status_code == 410
    assert not Membership.objects.filter(user=dora, team=cast.acme).exists()


def test_unknown_token_is_404(cast, login):
    r = login(cast.bob).get(reverse("invitation_accept", args=["nope"]))
    assert r.status_code == 404


def test_reinvite_replaces_pending_and_members_cannot_be_invited(cast):
    first, t1 = services.invitation_create(actor=cast.alice, team=cast.acme, email="dora@example.com")
    second, t2 = services.invitation_create(actor=cast.alice, team=cast.acme, email="dora@example.com")
    first.refresh_from_db()
    assert first.revoked_at is not None and second.is_pending
    with pytest.raises(ValidationError) as exc:
        services.invitation_create(actor=cast.alice, team=cast.acme, email="BOB@example.com")
    assert exc.value.code == "already_member"


def test_charlie_gets_404_on_acme_invitations_and_members(cast, login):
    inv, _ = services.invitation_create(actor=cast.alice, team=cast.acme, email="dora@example.com")
    bob = Membership.objects.get(team=cast.acme, user=cast.bob)
    client = login(cast.charlie)
    assert client.post(reverse("invitation_revoke", args=[inv.pk])).status_code == 404
    assert client.post(reverse("member_role", args=[bob.pk]), {"role": "viewer"}).status_code == 404
    assert client.post(reverse("member_remove", args=[bob.pk])).status_code == 404
    inv.refresh_from_db()
    bob.refresh_from_db()
    assert inv.revoked_at is None and bob.role == "member"
    # his own team page shows globex, nothing of acme
    page = client.get(reverse("team_settings")).content.decode()
    assert "Globex" in page and "bob@example.com" not in page and "dora@example.com" not in page


def test_new_user_signs_up_through_an_invitation(cast, client, mailoutbox):
    """Anonymous → invitation page → signup with the invited address (already verified by the
    link, so no verification email) → back on the invitation → accept; no personal team."""
    _, token = services.invitation_create(actor=cast.alice, team=cast.acme, email="dora@example.com")
    mailoutbox.clear()
    url = reverse("invitation_accept", args=[token])
    r = client.get(url)
    assert r.status_code == 200 and reverse("account_signup") in r.content.decode()
    r = client.post(reverse("account_signup"),
                    {"email": "dora@example.com", "password1": "a-long-pass-phrase-42", "password2": "a-long-pass-phrase-42"})
    assert r.status_code == 302 and r["Location"] == url
    assert mailoutbox == []
    r = client.post(url)
    assert r.status_code == 302
    dora = User.objects.get(email="dora@example.com")
    assert list(Membership.objects.filter(user=dora).values_list("team__slug", "role")) == [("acme", "member")]
