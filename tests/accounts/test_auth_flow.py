"""Sign-up, email verification, sign-in, rate limiting and password reset through allauth's real views."""
import re

from django.urls import reverse

from accounts.models import Membership, User

PW = "a-long-pass-phrase-42"


def _link(mail, pattern):
    match = re.search(pattern, mail.body)
    assert match, mail.body
    return match.group(0)


def test_signup_verify_then_login(client, db, mailoutbox):
    r = client.post(reverse("account_signup"), {"email": "erin@example.com", "password1": PW, "password2": PW})
    assert r.status_code == 302 and r["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get(email="erin@example.com")
    # a personal team so the portal works from the first page
    assert list(Membership.objects.filter(user=user).values_list("role", flat=True)) == ["owner"]

    # mandatory verification: not signed in yet, and signing in is refused until confirmed
    assert "_auth_user_id" not in client.session
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["erin@example.com"]
    client.logout()
    r = client.post(reverse("account_login"), {"login": "erin@example.com", "password": PW})
    assert "_auth_user_id" not in client.session
    assert r.status_code == 302 and r["Location"] == reverse("account_email_verification_sent")
    assert len(mailoutbox) == 1  # a resend within 3 minutes is rate limited (confirm_email)

    url = _link(mailoutbox[0], r"http://testserver/accounts/confirm-email/[^/\s]+/")
    path = url.removeprefix("http://testserver")
    r = client.get(path)
    assert r.status_code == 200 and "erin@example.com" in r.content.decode()
    r = client.post(path)
    assert r.status_code == 302
    assert user.emailaddress_set.get().verified

    r = client.post(reverse("account_login"), {"login": "erin@example.com", "password": PW})
    assert r.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
    r = client.get(reverse("team_settings"))
    assert r.status_code == 200 and "erin@example.com" in r.content.decode()


def test_login_wrong_password_is_refused(cast, client):
    r = client.post(reverse("account_login"), {"login": "alice@example.com", "password": "nope"})
    assert r.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "not correct" in r.content.decode()


def test_login_rate_limited_after_repeated_failures(cast, client):
    for _ in range(5):
        r = client.post(reverse("account_login"), {"login": "alice@example.com", "password": "wrong"})
        assert r.status_code == 200
    # the right password no longer helps: the limit is per address and per IP
    r = client.post(reverse("account_login"), {"login": "alice@example.com", "password": cast.password})
    assert "_auth_user_id" not in client.session
    assert "Too many failed login attempts" in r.content.decode()


def test_password_reset(cast, client, mailoutbox):
    r = client.post(reverse("account_reset_password"), {"email": "bob@example.com"})
    assert r.status_code == 302
    assert len(mailoutbox) == 1
    url = _link(mailoutbox[0], r"http://testserver/accounts/password/reset/key/[^\s]+/")
    r = client.get(url.removeprefix("http://testserver"), follow=True)
    assert r.status_code == 200
    form_path = r.redirect_chain[-1][0] if r.redirect_chain else url.removeprefix("http://testserver")
    r = client.post(form_path, {"password1": "brand-new-secret-77", "password2": "brand-new-secret-77"})
    assert r.status_code == 302
    client.logout()
    assert client.login(username="bob@example.com", password="brand-new-secret-77")


def test_logout_is_a_post(cast, login):
    client = login(cast.alice)
    r = client.post(reverse("account_logout"))
    assert r.status_code == 302
    assert "_auth_user_id" not in client.session


def test_pages_render_in_the_portal_layout(cast, client):
    r = client.get(reverse("account_login"))
    html = r.content.decode()
    assert r.status_code == 200
    assert 'class="skip-link"' in html and "Mouthpiece" in html
    assert 'class="main container auth-page"' in html
    assert 'name="language"' in html  # the language switcher is on every page
