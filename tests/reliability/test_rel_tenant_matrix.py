"""The tenant isolation matrix: every URL pattern of the project, every API route and every
websocket route, tried against team acme's objects by people of team globex (owner, admin,
member, viewer), a globex API key, acme's own revoked API key and anonymous visitors.

Every attempt must be refused (401/403/404/405/410, or a redirect to a login page) and no
response may carry a byte of acme's media. The routes are collected from the resolver, so a new
route fails this test until it is classified in ROUTES below."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import Membership

pytestmark = pytest.mark.django_db

DENIED = {401, 403, 404, 405, 410}


@dataclass
class Route:
    """How to attack one route.

    kind: "object" (URL kwargs name acme objects), "team" (acts on the visitor's current team:
    the page must show nothing of acme; `post` fills a body naming acme objects), "token"
    (public by a secret token: bogus and revoked tokens are tried), "public" (not tenant data).
    """

    kind: str
    kwargs: Callable | None = None
    methods: tuple = ("get", "post")
    post: Callable | None = None
    why: str = ""
    variants: Callable | None = None  # token routes: [(kwargs, allowed statuses)]
    destructive: bool = False
    visitor_page: bool = False  # a "team" page that shows visitors a public page (200) instead of the sign-in redirect


def _ids(w) -> dict:
    return {"done": w.done.pk, "failed": w.failed.pk, "queued": w.queued.pk}


ROUTES: dict[str, Route] = {
    # --- accounts ----------------------------------------------------------------------------
    "team_settings": Route("team", methods=("get", "post"), post=lambda w: {"team-name": "pwned"}),
    "team_switch": Route("team", methods=("post",), post=lambda w: {"team": str(w.template.team_id)}),
    "team_create": Route("team", methods=("get",), why="creates the visitor's own team"),
    "member_role": Route("object", kwargs=lambda w: {"pk": w.bob_membership.pk}, post=lambda w: {"role": "owner"}),
    "member_remove": Route("object", kwargs=lambda w: {"pk": w.bob_membership.pk}, destructive=True),
    "invitation_create": Route("team", methods=("post",), post=lambda w: {"email": "x@globex.example", "role": "member"}),
    "invitation_revoke": Route("object", kwargs=lambda w: {"pk": w.invitation.pk}, destructive=True),
    "invitation_accept": Route("token", variants=lambda w: [
        ({"token": "not-a-real-token-aaaaaaaaaaaaaaaaaaaaaaaaaaa"}, {404}),
        ({"token": w.invitation_token[:-2] + "xx"}, {404}),
    ]),
    "usage": Route("team", methods=("get",)),
    "team_api": Route("team", methods=("get", "post"), post=lambda w: {"action": "revoke_key", "key": str(w.key.pk)}),
    # --- jobs portal ---------------------------------------------------------------------------
    "dashboard": Route("team", methods=("get",), visitor_page=True, why="visitors get the welcome page: no tenant data"),
    "template_list": Route("team", methods=("get",)),
    "template_upload": Route("team", methods=("get",),
                             why="uploads go to the visitor's own team (tests/reliability/test_rel_bad_inputs.py)"),
    "template_detail": Route("object", kwargs=lambda w: {"pk": w.template.pk}, post=lambda w: {"name": "pwned", "tags": ""}),
    "template_delete": Route("object", kwargs=lambda w: {"pk": w.template2.pk}, destructive=True),
    "template_poster": Route("object", kwargs=lambda w: {"pk": w.template.pk}),
    "template_video": Route("object", kwargs=lambda w: {"pk": w.template.pk}),
    "job_list": Route("team", methods=("get",)),
    "job_new": Route("team", methods=("get", "post"), post=lambda w: {"templates": [str(w.template.pk)], "priority": "default",
                                                                     "title": "x", "audio": w.audio_upload()}),
    "job_detail": Route("object", kwargs=lambda w: {"pk": w.job.pk}),
    "job_cancel": Route("object", kwargs=lambda w: {"pk": w.job.pk}, destructive=True),
    "job_zip": Route("object", kwargs=lambda w: {"pk": w.job.pk}),
    "render_video": Route("object", kwargs=lambda w: {"pk": w.done.pk}),
    "render_download": Route("object", kwargs=lambda w: {"pk": w.done.pk}),
    "render_log": Route("object", kwargs=lambda w: {"pk": w.done.pk}),
    "render_cancel": Route("object", kwargs=lambda w: {"pk": w.queued.pk}, destructive=True),
    "render_retry": Route("object", kwargs=lambda w: {"pk": w.failed.pk}),
    "gallery": Route("team", methods=("get",)),
    "gallery_bulk": Route("team", methods=("post",), post=lambda w: {"render": [str(w.done.pk)], "action": "zip"},
                          why="acts only on the visitor's own team's videos"),
    "samples_add": Route("team", methods=("post",), why="adds the sample templates to the visitor's own team"),
    # --- sharing -------------------------------------------------------------------------------
    "share_create": Route("team", methods=("post",), post=lambda w: {"render": str(w.done.pk), "password": ""}),
    "share_revoke": Route("object", kwargs=lambda w: {"pk": w.job_share.pk}, destructive=True),
    "share_view": Route("token", variants=lambda w: [
        ({"token": "A" * 32}, {404}),
        ({"token": w.revoked_token}, {410}),
    ]),
    "share_video": Route("token", variants=lambda w: [
        ({"token": "A" * 32, "render_id": w.done.pk}, {404}),
        ({"token": w.revoked_token, "render_id": w.done.pk}, {410}),
        ({"token": w.pw_token, "render_id": w.done.pk}, {403}),  # password not given
        ({"token": w.job_token, "render_id": w.failed.pk}, {404}),  # not a finished video of the share
        ({"token": w.render_token, "render_id": w.queued.pk}, {404}),
    ]),
    "share_download": Route("token", variants=lambda w: [
        ({"token": "A" * 32, "render_id": w.done.pk}, {404}),
        ({"token": w.revoked_token, "render_id": w.done.pk}, {410}),
        ({"token": w.pw_token, "render_id": w.done.pk}, {403}),
        ({"token": w.job_token, "render_id": w.failed.pk}, {404}),
    ]),
    "share_poster": Route("token", variants=lambda w: [
        ({"token": "A" * 32, "render_id": w.done.pk}, {404}),
        ({"token": w.revoked_token, "render_id": w.done.pk}, {410}),
        ({"token": w.pw_token, "render_id": w.done.pk}, {403}),
        ({"token": w.render_token, "render_id": w.failed.pk}, {404}),
    ]),
    # --- REST API ------------------------------------------------------------------------------
    "api_schema": Route("public", why="OpenAPI schema: no tenant data"),
    "api_docs": Route("public", why="Swagger UI page"),
    "api_redoc": Route("public", why="ReDoc page"),
    "api_template_list": Route("team", methods=("get", "post")),
    "api_template_detail": Route("object", kwargs=lambda w: {"pk": w.template.pk}, methods=("get", "delete")),
    "api_job_list": Route("team", methods=("get", "post"),
                          post=lambda w: {"template_ids": [str(w.template.pk)], "audio": w.audio_upload()}),
    "api_job_detail": Route("object", kwargs=lambda w: {"pk": w.job.pk}, methods=("get",)),
    "api_job_cancel": Route("object", kwargs=lambda w: {"pk": w.job.pk}, methods=("post",), destructive=True),
    "api_job_retry": Route("object", kwargs=lambda w: {"pk": w.job.pk}, methods=("post",)),
    "api_job_zip": Route("object", kwargs=lambda w: {"pk": w.job.pk}, methods=("get",)),
    "api_render_detail": Route("object", kwargs=lambda w: {"pk": w.done.pk}, methods=("get",)),
    "api_render_download": Route("object", kwargs=lambda w: {"pk": w.done.pk}, methods=("get",)),
    "api_render_log": Route("object", kwargs=lambda w: {"pk": w.done.pk}, methods=("get",)),
    "api_render_cancel": Route("object", kwargs=lambda w: {"pk": w.queued.pk}, methods=("post",), destructive=True),
    "api_render_retry": Route("object", kwargs=lambda w: {"pk": w.failed.pk}, methods=("post",)),
    "api_share_list": Route("team", methods=("get", "post"), post=lambda w: {"render_id": str(w.done.pk)}),
    "api_share_detail": Route("object", kwargs=lambda w: {"pk": w.job_share.pk}, methods=("get", "delete"), destructive=True),
    "api_usage": Route("team", methods=("get",)),
    # --- operations ----------------------------------------------------------------------------
    "healthz": Route("public", why="liveness: counts only, no tenant data"),
    "admin:login": Route("public", why="the admin sign-in form"),
    "admin:logout": Route("public", why="the admin sign-out (POST)"),
    "set_language": Route("public", why="Django i18n: sets a cookie"),
    "status": Route("public", why="the status page for people: working / not working per check, no tenant data"),
    "favicon": Route("public", why="a redirect to the static logo"),
}

# Whole families classified by where they live: the staff-only admin (and django-rq's pages in
# it) and allauth's sign-in pages. Anything else must be named in ROUTES.
FAMILIES = {
    "admin/": "staff",
    "accounts/": "public",
}

# Websocket routes: pattern -> how to fill its kwargs.
WS_ROUTES = {
    "ws/jobs/<uuid:job_id>/": lambda w: f"/ws/jobs/{w.job.pk}/",
    "ws/teams/<int:team_id>/templates/": lambda w: f"/ws/teams/{w.template.team_id}/templates/",
}


def _walk(resolver, prefix="", namespace=None):
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}:{p.namespace}" if namespace and p.namespace else (p.namespace or namespace)
            yield from _walk(p, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else p.name
            yield name, prefix + str(p.pattern), p


def collected_routes():
    """(key, pattern, URLPattern) for every route of the project."""
    return [(name or f"<unnamed {pattern}>", pattern, p) for name, pattern, p in _walk(get_resolver())]


def _classify(key: str, pattern: str) -> str | None:
    if key in ROUTES:
        return ROUTES[key].kind
    for prefix, kind in FAMILIES.items():
        if pattern.startswith(prefix):
            return kind
    return None


def test_every_route_is_classified():
    """A new route must be added to ROUTES (or live under a classified family) to pass."""
    unclassified = [f"{key} ({pattern})" for key, pattern, _p in collected_routes() if _classify(key, pattern) is None]
    assert not unclassified, "classify these routes in tests/reliability/test_rel_tenant_matrix.py ROUTES: " + ", ".join(unclassified)
    names = {key for key, _pat, _p in collected_routes()}
    stale = sorted(set(ROUTES) - names)
    assert not stale, f"ROUTES names routes that no longer exist: {stale}"
    from jobs.routing import websocket_urlpatterns

    ws = {str(p.pattern) for p in websocket_urlpatterns}
    assert ws == set(WS_ROUTES), f"classify websocket routes in WS_ROUTES: {sorted(ws - set(WS_ROUTES))}"


# --- the attackers ---------------------------------------------------------------------------

@pytest.fixture
def globex_people(cast, make_user):
    people = {"charlie(owner)": cast.charlie}
    for role in ("admin", "member", "viewer"):
        user = make_user(f"globex-{role}@example.com")
        Membership.objects.create(team=cast.globex, user=user, role=role)
        people[f"globex-{role}"] = user
    return people


@pytest.fixture
def attackers(cast, globex_people, acme_world):
    """name -> (Client, is_api_key, has_no_session)."""
    from accounts.api_keys import apikey_create

    result = {}
    for label, user in globex_people.items():
        c = Client()
        c.force_login(user)
        result[label] = (c, False, False)
    _key, globex_plain = apikey_create(team=cast.globex, name="globex key")
    result["globex-api-key"] = (Client(headers={"Authorization": f"Bearer {globex_plain}"}), True, True)
    result["acme-revoked-api-key"] = (Client(headers={"Authorization": f"Bearer {acme_world.revoked_plain}"}), True, True)
    result["anonymous"] = (Client(), False, True)
    return result


def _body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def _markers(w) -> list[bytes]:
    """Text that only acme's pages contain (names, ids, addresses)."""
    return [m.encode() for m in (
        "Acme launch", "acme-secret-log-line", "hooks.acme.example", "newhire@example.com", w.key.prefix,
        str(w.template.pk), str(w.job.pk), str(w.done.pk), str(w.job_share.pk), str(w.delivery.pk),
    )]


def _assert_no_leak(w, response, what: str):
    body = _body(response)
    for path, chunk in zip(w.files, w.chunks):
        assert chunk not in body, f"{what}: response carries bytes of acme's {path.name}"
    return body


def _login_redirect(response) -> bool:
    location = response.get("Location", "")
    return response.status_code == 302 and (location.startswith(reverse("account_login")) or location.startswith("/admin/login/"))


def _call(client, method: str, url: str, data=None):
    if method == "get":
        return client.get(url)
    if method == "delete":
        return client.delete(url)
    return client.post(url, data or {})


def _staff_url(key: str, pattern: URLPattern, prefix_pattern: str, w) -> str | None:
    """A concrete URL for an admin route, its ids pointing at acme's objects."""
    from django.urls import NoReverseMatch

    values = {"object_id": str(w.job.pk), "app_label": "jobs", "id": str(w.bob_membership.user_id), "content_type_id": "1",
              "queue_index": "0", "job_id": "x", "registry_name": "started", "connection_index": "0", "url": "jobs/"}
    params = list(getattr(pattern.pattern, "converters", {}) or {}) or list(pattern.pattern.regex.groupindex)
    kwargs = {k: values.get(k, "1") for k in params}
    if not pattern.name:
        return "/" + prefix_pattern.replace("<path:object_id>", str(w.job.pk))
    try:
        return reverse(key, kwargs=kwargs)
    except NoReverseMatch:
        return None


def test_tenant_isolation_matrix(cast, acme_world, attackers, client):
    w = acme_world
    attempts = checked_routes = 0
    failures = []
    markers = _markers(w)
    routes = collected_routes()

    def check(label, response, url, method, allowed=DENIED, anonymous=False, team_page=False, sent=None):
        nonlocal attempts
        attempts += 1
        status = response.status_code
        ok = status in allowed or (anonymous and _login_redirect(response))
        if team_page and 200 <= status < 400 and not ok:
            ok = True  # the visitor's own team: allowed, but must not show acme (checked below)
        body = _assert_no_leak(w, response, f"{label} {method.upper()} {url}")
        if team_page:
            # An id the visitor sent may be echoed in a form error; it is not a leak.
            echoed = {str(v).encode() for value in (sent or {}).values() for v in (value if isinstance(value, list) else [value])}
            for marker in markers:
                if marker in body and marker not in echoed:
                    failures.append(f"{label} {method.upper()} {url}: page shows acme's {marker.decode()!r}")
        if not ok:
            failures.append(f"{label} {method.upper()} {url}: {status}")

    ordered = sorted(routes, key=lambda r: (ROUTES.get(r[0], Route("x")).destructive, r[0]))
    for key, pattern, p in ordered:
        kind = _classify(key, pattern)
        spec = ROUTES.get(key)
        if kind == "object":
            url = reverse(key, kwargs=spec.kwargs(w))
            checked_routes += 1
            for label, (c, _is_key, anonymous) in attackers.items():
                for method in spec.methods:
                    data = spec.post(w) if spec.post and method == "post" else None
                    # A portal page sends anonymous visitors (a key is no session) to the login page.
                    check(label, _call(c, method, url, data), url, method, anonymous=anonymous and not key.startswith("api_"))
        elif kind == "team":
            url = reverse(key)
            checked_routes += 1
            for label, (c, is_key, anonymous) in attackers.items():
                if is_key and not key.startswith("api_"):
                    continue  # a key is not a session: portal pages treat it as anonymous (covered)
                for method in spec.methods:
                    data = spec.post(w) if spec.post and method == "post" else None
                    response = _call(c, method, url, data)
                    allowed = DENIED | ({400} if method == "post" else set()) | ({200} if anonymous and spec.visitor_page else set())
                    own_team = not anonymous or (is_key and label == "globex-api-key")
                    check(label, response, url, method, allowed=allowed, anonymous=anonymous and not key.startswith("api_"),
                          team_page=own_team, sent=data)
        elif kind == "token":
            checked_routes += 1
            for kwargs, allowed in spec.variants(w):
                url = reverse(key, kwargs=kwargs)
                for label, (c, _is_key, _anon) in attackers.items():
                    check(label, c.get(url), url, "get", allowed=allowed)
        elif kind == "staff":
            url = _staff_url(key, p, pattern, w)
            if url is None:
                continue
            checked_routes += 1
            for label, (c, _is_key, _anon) in attackers.items():
                response = c.get(url)
                location = response.get("Location", "")
                if response.status_code in (301, 302) and location.startswith("/admin/") and not _login_redirect(response):
                    response = c.get(location)  # the admin's own "<id>/" -> "<id>/change/" redirect
                check(label, response, url, "get", anonymous=True)
    assert not failures, "\n".join(failures)
    assert checked_routes >= 60 and attempts >= 600, (checked_routes, attempts)

    # The objects are untouched by all of that.
    w.template2.refresh_from_db()
    w.job.refresh_from_db()
    w.queued.refresh_from_db()
    w.job_share.refresh_from_db()
    w.invitation.refresh_from_db()
    assert w.queued.status == "queued" and w.job_share.revoked_at is None and w.invitation.revoked_at is None
    assert Membership.objects.filter(pk=w.bob_membership.pk, role="member").exists()


def test_positive_controls_prove_the_matrix_is_not_vacuous(cast, acme_world, client):
    """The same URLs serve acme's own people, so the 404s above are isolation, not typos."""
    w = acme_world
    client.force_login(cast.alice)
    post_only = []
    for key, spec in ROUTES.items():
        if spec.kind != "object":
            continue
        url = reverse(key, kwargs=spec.kwargs(w))
        response = client.get(url)
        if response.status_code == 405:
            post_only.append(key)
        else:
            assert response.status_code == 200, (key, response.status_code)
    body = _body(client.get(reverse("render_video", kwargs={"pk": w.done.pk})))
    done_index = w.files.index(next(p for p in w.files if p.name == f"{w.done.pk}.mp4"))
    assert w.chunks[done_index] in body  # the leak check would catch a served file
    key_client = Client(headers={"Authorization": f"Bearer {w.key_plain}"})
    for key in ("api_render_download", "api_job_detail", "api_template_detail"):
        assert key_client.get(reverse(key, kwargs=ROUTES[key].kwargs(w))).status_code == 200
    assert Client().get(reverse("share_video", kwargs={"token": w.render_token, "render_id": w.done.pk})).status_code == 200
    # Every POST-only route reaches its object for acme's owner (a 404 here would mean the
    # matrix above proved nothing for that route).
    assert len(post_only) >= 10, post_only
    for key in sorted(post_only, key=lambda k: ROUTES[k].destructive):
        spec = ROUTES[key]
        response = client.post(reverse(key, kwargs=spec.kwargs(w)), spec.post(w) if spec.post else {})
        assert response.status_code in (200, 201, 202, 204, 302, 409), (key, response.status_code)
    w.queued.refresh_from_db()
    w.job_share.refresh_from_db()
    assert w.queued.status == "cancelled" and w.job_share.revoked_at is not None


# --- websockets --------------------------------------------------------------------------------

def _ws_connect(path: str, *, session_key: str | None, origin: str = "http://testserver"):
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    async def run():
        headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
        if session_key:
            headers.append((b"cookie", f"sessionid={session_key}".encode()))
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await communicator.connect(timeout=5)
        first = await communicator.receive_json_from(timeout=5) if connected else None
        await communicator.disconnect()
        return connected, code, first

    return async_to_sync(run)()


def _session_for(user) -> str:
    c = Client()
    c.force_login(user)
    return c.session.session_key


@pytest.mark.django_db(transaction=True)
def test_websocket_routes_refuse_other_teams_and_anonymous(cast, acme_world, globex_people):
    w = acme_world
    for pattern, fill in WS_ROUTES.items():
        path = fill(w)
        for label, user in globex_people.items():
            connected, code, first = _ws_connect(path, session_key=_session_for(user))
            assert (connected, code) == (False, 4404), f"{label} connected to {path}"
        connected, _code, _first = _ws_connect(path, session_key=None)
        assert not connected, f"anonymous connected to {path}"
        connected, code, first = _ws_connect(path, session_key=_session_for(cast.vera))  # acme's viewer: allowed
        assert connected and first["snapshot"], (pattern, code)
