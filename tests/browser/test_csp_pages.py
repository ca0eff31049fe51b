"""Every portal page under the Content-Security-Policy in chromium (issue 17, Low 11): no page
reports a violation (new_page fails the test on any), and the external page-setup script did run
(the page is marked scripted, a read-only secret is selected on focus)."""
from __future__ import annotations

import pytest
from browser_testutil import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

VIOLATIONS_JS = """() => { window.__csp = []; document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI)); }"""


def test_portal_pages_run_without_csp_violations(live, new_page, cast):
    from accounts.models import User

    User.objects.filter(pk=cast.alice.pk).update(is_staff=True, is_superuser=True)
    page = new_page()
    page.add_init_script(f"({VIOLATIONS_JS})()")
    sign_in(page, "alice@example.com", cast.password)
    portal = ("/", "/templates/", "/jobs/", "/jobs/new/", "/team/", "/team/api/", "/usage/", "/gallery/",
              "/accounts/password/change/")
    for path in (*portal, "/admin/", "/admin/accounts/team/", "/admin/accounts/apikey/"):
        response = page.goto(path)
        assert response.status == 200, path
        # 'self' plus the harness's 'unsafe-eval' (see conftest): never 'unsafe-inline'
        assert "script-src 'self' 'unsafe-eval';" in (response.headers.get("content-security-policy") or ""), path
        if path in portal:  # the admin has its own base template
            assert page.evaluate("document.documentElement.classList.contains('js')"), path
        assert page.evaluate("window.__csp") == [], (path, page.evaluate("window.__csp"))
    # A new API key is shown once, read-only, and selected when focused (formerly an inline onfocus).
    page.goto("/team/api/")
    page.locator("#key-name").fill("csp check")
    with page.expect_navigation():
        page.get_by_role("button", name="Create key").click()
    page.locator("#new-key").focus()
    selected = page.evaluate("(() => { const el = document.activeElement; return el.selectionEnd - el.selectionStart; })()")
    assert selected == len(page.locator("#new-key").input_value()) > 20
    assert page.evaluate("window.__csp") == []
