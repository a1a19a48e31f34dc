"""Browser sessions and single sign-on: password login with a session cookie and CSRF protection; OpenID Connect
login (authorization code + PKCE) against a test provider on loopback (tests/e2e/oidc_provider.py): identity to
user, groups to project roles and admin, and every way the provider's answer or the browser's state can be
wrong is refused without a session."""
import socket
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from conftest import ADMIN_PASSWORD, Client, Server, assert_problem, login
from oidc_provider import OidcProvider

PASSWORD = "long-enough-password"


def set_cookies(r):
    """name -> (value, attributes) of every Set-Cookie of a response (requests drops Secure cookies on http)."""
    out = {}
    for header in r.raw.headers.getlist("Set-Cookie"):
        first, *attrs = [p.strip() for p in header.split(";")]
        name, _, value = first.partition("=")
        out[name] = (value, {a.split("=")[0].lower(): (a.split("=", 1)[1] if "=" in a else True) for a in attrs})
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def idp():
    with OidcProvider(client_id="lathe", client_secret="idp-secret") as p:
        yield p


@pytest.fixture(scope="module")
def server(tmp_path_factory, idp):
    port = free_port()
    s = Server(tmp_path_factory.mktemp("sso"),
               extra_args=["--listen", f"127.0.0.1:{port}", "--oidc-issuer", idp.issuer, "--oidc-client-id", "lathe",
                           "--oidc-redirect-uri", f"http://127.0.0.1:{port}/api/v1/auth/oidc/callback",
                           "--oidc-admin-group", "lathe-admins", "--oidc-jwks-min-refresh-s", "1",
                           "--oidc-role-map", "ml=team:developer,ml-leads=team:maintainer,analysts=reports:viewer"],
               env={"LATHE_OIDC_CLIENT_SECRET": "idp-secret"}).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(server):
    return Client(server.url, login(server.url))


def sso_login(server, idp, return_to=None, tamper=None):
    """Runs the browser's side of the flow; returns the callback's response (and the state cookie used)."""
    params = {"return_to": return_to} if return_to else {}
    r = requests.get(server.url + "/api/v1/auth/oidc/login", params=params, allow_redirects=False)
    assert r.status_code == 302, r.text
    state_cookie = set_cookies(r)["lathe_oidc"]
    assert state_cookie[1]["httponly"] and state_cookie[1]["samesite"] == "Lax" and state_cookie[1]["secure"]
    at_idp = requests.get(r.headers["Location"], allow_redirects=False)
    assert at_idp.status_code == 302, at_idp.text
    back = urlparse(at_idp.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(back.query).items()}
    cookie = state_cookie[0]
    if tamper:
        query, cookie = tamper(query, cookie)
    headers = {"Cookie": f"lathe_oidc={cookie}"} if cookie is not None else {}
    return requests.get(f"{server.url}{back.path}", params=query, headers=headers, allow_redirects=False)


def session_client(server, response):
    cookies = set_cookies(response)
    token, attrs = cookies["lathe_session"]
    assert attrs["httponly"] and attrs["secure"] and attrs["samesite"] == "Strict", attrs
    csrf, csrf_attrs = cookies["lathe_csrf"]
    assert "httponly" not in csrf_attrs
    return token, csrf


def call(server, method, path, token, csrf=None, **kw):
    headers = {"Cookie": f"lathe_session={token}", **kw.pop("headers", {})}
    if csrf:
        headers["X-CSRF-Token"] = csrf
    return requests.request(method, server.url + path, headers=headers, **kw)


def test_password_login_session_cookie_and_csrf(server, admin):
    r = requests.post(server.url + "/api/v1/auth/login",
                      json={"username": "admin", "password": ADMIN_PASSWORD, "session": True})
    assert r.status_code == 200, r.text
    token, csrf = session_client(server, r)
    assert r.json()["csrf_token"] == csrf and token == r.json()["token"]
    assert call(server, "GET", "/api/v1/auth/whoami", token).json()["user"] == "admin"
    # Changing anything needs the CSRF header, from this server's origin.
    assert_problem(call(server, "POST", "/api/v1/projects", token, json={"name": "c1"}), 403, "X-CSRF-Token")
    assert_problem(call(server, "POST", "/api/v1/projects", token, csrf="0" * 64, json={"name": "c1"}), 403,
                   "does not match")
    assert_problem(call(server, "POST", "/api/v1/projects", token, csrf=csrf, json={"name": "c1"},
                        headers={"Origin": "https://evil.example"}), 403, "cross-site")
    assert call(server, "POST", "/api/v1/projects", token, csrf=csrf, json={"name": "c1"},
                headers={"Origin": server.url}).status_code == 201
    names = [p["name"] for p in admin.get("/api/v1/projects").json()["projects"]]
    assert names.count("c1") == 1
    # A tampered cookie, or a non-session credential in it, is refused.
    assert_problem(call(server, "GET", "/api/v1/auth/whoami", token[:-2] + "xx"), 401)
    assert_problem(call(server, "GET", "/api/v1/auth/whoami", "lk_abc_def"), 401, "session cookie")
    # A bad "session" value is a clear 400.
    assert_problem(requests.post(server.url + "/api/v1/auth/login",
                                 json={"username": "admin", "password": ADMIN_PASSWORD, "session": "yes"}),
                   400, "session")
    # Logout ends the session and clears both cookies.
    r = call(server, "POST", "/api/v1/auth/logout", token, csrf=csrf)
    assert r.status_code == 204
    assert {n: v[1]["max-age"] for n, v in set_cookies(r).items()} == {"lathe_session": "0", "lathe_csrf": "0"}
    assert call(server, "GET", "/api/v1/auth/whoami", token).status_code == 401


def test_sso_login_creates_the_user_maps_groups_and_starts_a_session(server, idp, admin):
    idp.reset()
    idp.next_login(sub="u-ann", preferred_username="ann", email="ann@example.com", groups=["ml", "analysts"])
    r = sso_login(server, idp, return_to="/ui/projects/team")
    assert r.status_code == 200, r.text
    assert 'url=/ui/projects/team"' in r.text and "ann" in r.text
    token, csrf = session_client(server, r)
    who = call(server, "GET", "/api/v1/auth/whoami", token).json()
    assert who["user"] == "ann" and who["admin"] is False
    projects = {p["name"]: p["role"] for p in call(server, "GET", "/api/v1/projects", token).json()["projects"]}
    assert projects == {"team": "developer", "reports": "viewer"}
    # The PKCE challenge went to the provider, and the verifier came back to its token endpoint.
    assert idp.authorize_requests[-1]["code_challenge_method"] == "S256"
    assert idp.token_requests[-1]["status"] == 200
    # No password works for a single sign-on user.
    assert requests.post(server.url + "/api/v1/auth/login",
                         json={"username": "ann", "password": "sso:" + idp.issuer}).status_code == 401
    # Groups are synced at each login: promoted in one project, dropped from the other.
    idp.next_login(sub="u-ann", preferred_username="ann", groups=["ml", "ml-leads"])
    token, _ = session_client(server, sso_login(server, idp))
    projects = {p["name"]: p["role"] for p in call(server, "GET", "/api/v1/projects", token).json()["projects"]}
    assert projects == {"team": "maintainer"}
    # Admin group membership makes a server admin; leaving it unmakes one.
    idp.next_login(sub="u-root", preferred_username="root-sso", groups=["lathe-admins"])
    token, _ = session_client(server, sso_login(server, idp))
    assert call(server, "GET", "/api/v1/auth/whoami", token).json()["admin"] is True
    idp.next_login(sub="u-root", preferred_username="root-sso", groups=[])
    token, _ = session_client(server, sso_login(server, idp))
    assert call(server, "GET", "/api/v1/auth/whoami", token).json()["admin"] is False
    # The logins are in the audit log.
    entries = admin.get("/api/v1/admin/audit", params={"action": "GET /api/v1/auth/oidc/callback",
                                                       "limit": 1000}).json()["entries"]
    assert {e["actor"] for e in entries if e["outcome"] == "ok"} >= {"ann", "root-sso"}


def test_open_redirects_are_refused(server, idp):
    idp.reset()
    idp.next_login(sub="u-ann", preferred_username="ann", groups=["ml"])
    for bad in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = sso_login(server, idp, return_to=bad)
        assert r.status_code == 200 and 'url=/"' in r.text, (bad, r.text)


def test_a_local_user_is_never_taken_over(server, idp, admin):
    assert admin.post("/api/v1/users", json={"username": "bob", "password": PASSWORD}).status_code == 201
    idp.reset()
    idp.next_login(sub="attacker", preferred_username="bob")
    r = sso_login(server, idp)
    assert_problem(r, 409, "bob", "not linked")
    assert "lathe_session" not in set_cookies(r)
    # The same name from another subject is refused too once linked.
    idp.next_login(sub="u-carol", preferred_username="carol")
    assert sso_login(server, idp).status_code == 200
    idp.next_login(sub="someone-else", preferred_username="carol")
    assert_problem(sso_login(server, idp), 409, "carol")


def test_a_provider_username_lathe_cannot_use_is_refused(server, idp):
    idp.reset()
    for name in ("..", "-rf", ".hidden"):
        idp.next_login(sub="u-" + name, preferred_username=name)
        r = sso_login(server, idp)
        assert_problem(r, 400, "not a valid lathe username")
        assert "lathe_session" not in set_cookies(r)


@pytest.mark.parametrize("knob,value,needle", [
    ("audience", "another-client", "audience"),
    ("expired", True, "expired"),
    ("sign_with_unpublished_key", True, "signature"),
    ("nonce_override", "not-the-nonce", "nonce"),
    ("issuer_override", "https://evil.example", "iss"),
])
def test_bad_id_tokens_are_refused(server, idp, knob, value, needle):
    idp.reset()
    idp.next_login(sub="u-dan", preferred_username="dan")
    setattr(idp, knob, value)
    try:
        r = sso_login(server, idp)
    finally:
        idp.reset()
    assert_problem(r, 401, needle)
    assert "lathe_session" not in set_cookies(r)


def test_state_cookie_and_code_problems_are_refused(server, idp):
    idp.reset()
    idp.next_login(sub="u-eve", preferred_username="eve")
    # The state in the URL must match the browser's cookie (a login forced on the victim by an attacker).
    assert_problem(sso_login(server, idp, tamper=lambda q, c: ({**q, "state": "attacker"}, c)), 400, "state")
    assert_problem(sso_login(server, idp, tamper=lambda q, c: (q, None)), 400, "no login in progress")
    assert_problem(sso_login(server, idp, tamper=lambda q, c: (q, c[:-4] + "AAAA")), 400, "invalid")
    assert_problem(sso_login(server, idp, tamper=lambda q, c: ({k: v for k, v in q.items() if k != "code"}, c)),
                   400, "code")
    # A code is single use.
    seen = {}

    def keep(q, c):
        seen.update(q=q, c=c)
        return q, c
    assert sso_login(server, idp, tamper=keep).status_code == 200
    replay = requests.get(server.url + "/api/v1/auth/oidc/callback", params=seen["q"],
                          headers={"Cookie": f"lathe_oidc={seen['c']}"}, allow_redirects=False)
    assert_problem(replay, 401)
    # The provider's refusal is passed on.
    idp.authorize_error = "access_denied"
    try:
        assert_problem(sso_login(server, idp), 401, "access_denied")
    finally:
        idp.reset()


def test_key_rotation_at_the_provider(server, idp):
    idp.reset()
    idp.next_login(sub="u-fay", preferred_username="fay")
    assert sso_login(server, idp).status_code == 200  # the provider's keys are cached now
    idp.rotate_keys(keep_old=False)
    time.sleep(1.1)  # --oidc-jwks-min-refresh-s 1: an unknown key refetches the set at most once a second
    idp.next_login(sub="u-fay", preferred_username="fay")
    assert sso_login(server, idp).status_code == 200


def test_sso_is_off_unless_configured(tmp_path):
    s = Server(tmp_path).start()
    try:
        assert_problem(requests.get(s.url + "/api/v1/auth/oidc/login", allow_redirects=False), 404, "not configured")
    finally:
        s.stop()
    (tmp_path / "bad").mkdir()
    bad = Server(tmp_path / "bad", extra_args=["--oidc-role-map", "ml=team"])
    with pytest.raises(RuntimeError, match="GROUP=PROJECT:ROLE"):
        bad.start()
