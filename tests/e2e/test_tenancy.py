"""Users, projects and roles over HTTP: admins manage users; any user creates a project and owns it; owners
manage members; every route x role is checked against the role table (generated from the OpenAPI document, so
a new route is covered the day it is added); another project's routes are invisible (404)."""
import re

import pytest

from conftest import ADMIN_PASSWORD, Client, Server, assert_problem, login

PASSWORD = "long-enough-password"
ROLES = ["owner", "maintainer", "developer", "viewer", "predictor"]
# What each role may do, by the permission a route declares (x-lathe-permission). The table is the contract;
# auth/auth.cc must agree with it.
ALLOWED = {
    "project:read": {"owner", "maintainer", "developer", "viewer"},
    "project:write": {"owner", "maintainer", "developer"},
    "project:deploy": {"owner", "maintainer"},
    "project:predict": {"owner", "maintainer", "developer", "predictor"},
    "project:members": {"owner"},
    "admin": set(),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("tenancy")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(server):
    return Client(server.url, login(server.url))


@pytest.fixture(scope="module")
def team(server, admin):
    """Project 'team' with one user per role, plus 'outsider' who is in no project."""
    for name in ROLES + ["outsider", "founder"]:
        r = admin.post("/api/v1/users", json={"username": name, "password": PASSWORD})
        assert r.status_code == 201, r.text
    founder = Client(server.url, login(server.url, "founder", PASSWORD))
    r = founder.post("/api/v1/projects", json={"name": "team"})
    assert r.status_code == 201 and r.json()["role"] == "owner", r.text
    for role in ROLES:
        r = founder.request("PUT", f"/api/v1/projects/team/members/{role}", json={"role": role})
        assert r.status_code == 200, r.text
    clients = {name: Client(server.url, login(server.url, name, PASSWORD)) for name in ROLES + ["outsider"]}
    clients["founder"] = founder
    return clients


def test_user_management_is_for_admins_and_validated(admin, team):
    assert_problem(team["owner"].post("/api/v1/users", json={"username": "x1", "password": PASSWORD}), 403, "admin")
    assert_problem(admin.post("/api/v1/users", json={"username": "x1", "password": "short"}), 400, "password")
    assert_problem(admin.post("/api/v1/users", json={"username": "samesame", "password": "samesame"}), 400,
                   "username")
    assert_problem(admin.post("/api/v1/users", json={"username": "x1", "password": "Password123"}), 400, "common")
    assert_problem(admin.post("/api/v1/users", json={"username": "x1", "password": "zzzzzzzzzz"}), 400, "repeated")
    assert_problem(admin.post("/api/v1/users", json={"username": "bad name/../x", "password": PASSWORD}), 400,
                   "username")
    assert_problem(admin.post("/api/v1/users", json={"username": "x1", "password": PASSWORD, "root": True}), 400,
                   "root")
    assert_problem(admin.post("/api/v1/users", json={"username": "viewer", "password": PASSWORD}), 409, "viewer")
    users = {u["username"]: u for u in admin.get("/api/v1/users").json()["users"]}
    assert users["viewer"]["admin"] is False and users["admin"]["admin"] is True
    assert "password_hash" not in str(users)


def test_projects_list_shows_only_the_callers_projects(admin, team):
    assert team["viewer"].get("/api/v1/projects").json()["projects"] == [{"name": "team", "role": "viewer"}]
    assert team["outsider"].get("/api/v1/projects").json()["projects"] == []
    names = [p["name"] for p in admin.get("/api/v1/projects").json()["projects"]]
    assert "team" in names and "default" in names
    members = {m["user"]: m["role"] for m in team["viewer"].get("/api/v1/projects/team/members").json()["members"]}
    assert members == {"founder": "owner", **{r: r for r in ROLES}}
    assert_problem(team["viewer"].post("/api/v1/projects", json={"name": "team"}), 409, "team")
    assert_problem(team["viewer"].post("/api/v1/projects", json={"name": "../etc"}), 400, "name")


def concrete(path):
    """An OpenAPI path with its parameters filled: the project is 'team', everything else a name that does not exist."""
    path = path.replace("{project}", "team")
    if path.startswith("/v2/models/"):  # KServe model names outside a project path are "project:deployment"
        path = path.replace("{model}", "team:nope-1")
    return re.sub(r"\{[^}]+\}", "nope-1", path)


def test_every_route_for_every_role(admin, team):
    spec = admin.get("/api/v1/openapi.json").json()
    checked = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            perm = op.get("x-lathe-permission")
            if perm not in ALLOWED or path == "/metrics":  # /metrics is public unless --metrics-public=false
                continue
            url = concrete(path)
            for role in ROLES:
                r = team[role].request(method.upper(), url, json={})
                where = f"{method.upper()} {url} as {role}: {r.status_code} {r.text[:200]}"
                assert r.status_code != 401, where
                if role in ALLOWED[perm]:
                    assert r.status_code != 403, where
                    assert not (r.status_code == 404 and "project 'team' not found" in r.text), where
                else:
                    assert r.status_code == 403, where
                checked += 1
            if "{project}" in path or path.startswith("/v2/models/"):
                # Someone outside the project cannot tell it exists.
                r = team["outsider"].request(method.upper(), url, json={})
                assert r.status_code == 404 and "project 'team' not found" in r.text, f"{method} {url}: {r.text}"
    assert checked > 100, checked  # the route table really was walked


def test_role_changes_and_disabling_take_effect_at_once(admin, team):
    founder, viewer = team["founder"], team["viewer"]
    assert_problem(viewer.post("/api/v1/projects/team/datasets?name=d", data=b"a,b\n1,2\n",
                               headers={"Content-Type": "text/csv"}), 403, "viewer")
    assert founder.request("PUT", "/api/v1/projects/team/members/viewer", json={"role": "developer"}).status_code == 200
    r = viewer.post("/api/v1/projects/team/datasets?name=d", data=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    assert founder.request("DELETE", "/api/v1/projects/team/members/viewer").status_code == 204
    assert_problem(viewer.get("/api/v1/projects/team/datasets"), 404, "project 'team' not found")
    # Of two owners one may step down; the last owner can neither step down nor be removed.
    owner = team["owner"]
    assert owner.request("PUT", "/api/v1/projects/team/members/founder", json={"role": "viewer"}).status_code == 200
    assert_problem(founder.request("PUT", "/api/v1/projects/team/members/viewer", json={"role": "viewer"}), 403,
                   "viewer")
    assert_problem(owner.request("PUT", "/api/v1/projects/team/members/owner", json={"role": "viewer"}), 409,
                   "last owner")
    assert_problem(owner.request("DELETE", "/api/v1/projects/team/members/owner"), 409, "last owner")
    founder = owner
    assert_problem(founder.request("PUT", "/api/v1/projects/team/members/nobody", json={"role": "viewer"}), 404,
                   "nobody")
    assert_problem(founder.request("PUT", "/api/v1/projects/team/members/outsider", json={"role": "god"}), 400, "role")
    # Disabling a user ends their sessions now; enabling and a new password let them back in.
    pred = team["predictor"]
    assert pred.get("/api/v1/auth/whoami").status_code == 200
    assert admin.patch("/api/v1/users/predictor", json={"disabled": True}).status_code == 200
    assert pred.get("/api/v1/auth/whoami").status_code == 401
    r = pred.post("/api/v1/auth/login", json={"username": "predictor", "password": PASSWORD})
    assert r.status_code == 401
    assert admin.patch("/api/v1/users/predictor", json={"disabled": False, "password": "another-long-password"}).status_code == 200
    assert pred.post("/api/v1/auth/login", json={"username": "predictor", "password": PASSWORD}).status_code == 401
    assert pred.post("/api/v1/auth/login", json={"username": "predictor",
                                                 "password": "another-long-password"}).status_code == 200
    assert_problem(admin.patch("/api/v1/users/admin", json={"disabled": True}), 409, "yourself")
    assert_problem(admin.patch("/api/v1/users/ghost", json={"disabled": True}), 404, "ghost")
    assert_problem(admin.patch("/api/v1/users/predictor", json={"disabled": "yes"}), 400, "disabled")


def test_two_labelers_agreement_and_majority(server, admin):
    """Labeling with two real users: each sees the rows they have not labeled, the queue reports percent
    agreement and Cohen's kappa between them, and finishing keeps only rows whose labels agree (ties stay
    unlabeled)."""
    for name in ("lab-a", "lab-b", "lab-owner"):
        assert admin.post("/api/v1/users", json={"username": name, "password": PASSWORD}).status_code == 201
    owner = Client(server.url, login(server.url, "lab-owner", PASSWORD))
    assert owner.post("/api/v1/projects", json={"name": "labels"}).status_code == 201
    for name in ("lab-a", "lab-b"):
        assert owner.request("PUT", f"/api/v1/projects/labels/members/{name}", json={"role": "developer"}).status_code == 200
    base = "/api/v1/projects/labels"
    r = owner.post(f"{base}/datasets?name=msgs", data=b"text,label\n" + b"".join(b"m%d,\n" % i for i in range(6)),
                   headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    r = owner.post(f"{base}/label-queues", json={"name": "q", "dataset": "msgs", "label_column": "label",
                                                 "labels": ["spam", "ham"], "labels_per_row": 2})
    assert r.status_code == 201, r.text
    a = Client(server.url, login(server.url, "lab-a", PASSWORD))
    b = Client(server.url, login(server.url, "lab-b", PASSWORD))
    votes = {"lab-a": ["spam", "ham", "spam", "ham", "spam", "ham"],
             "lab-b": ["spam", "ham", "ham", "ham", "spam", "spam"]}
    for client, name in ((a, "lab-a"), (b, "lab-b")):
        rows = [x["row"] for x in client.get(f"{base}/label-queues/q/next", params={"limit": 10}).json()["rows"]]
        assert rows == [0, 1, 2, 3, 4, 5]
        r = client.post(f"{base}/label-queues/q/labels",
                        json={"labels": [{"row": i, "label": v} for i, v in enumerate(votes[name])]})
        assert r.status_code == 200 and r.json()["recorded"] == 6, r.text
        assert client.get(f"{base}/label-queues/q/next", params={"limit": 10}).json()["rows"] == []
    q = owner.get(f"{base}/label-queues/q").json()
    assert sorted(l["user"] for l in q["labelers"]) == ["lab-a", "lab-b"]
    agreement = q["agreement"]
    assert agreement["rows_labeled_twice"] == 6
    assert abs(agreement["percent_agreement"] - 100 * 4 / 6) < 0.01 or abs(agreement["percent_agreement"] - 4 / 6) < 1e-6
    # Both labelers say spam half the time: chance agreement 0.5, kappa = (4/6 - 0.5) / 0.5 = 1/3.
    assert abs(agreement["cohens_kappa"]["value"] - 1 / 3) < 1e-9
    assert sorted(agreement["cohens_kappa"]["labelers"]) == ["lab-a", "lab-b"]
    r = owner.post(f"{base}/label-queues/q/finish")
    assert r.status_code == 201, r.text
    got = owner.get(f"{base}/datasets/msgs/versions/{r.json()['version']}/rows").json()["rows"]
    assert [x["label"] for x in got] == ["spam", "ham", None, "ham", "spam", None]


def test_repeated_failed_logins_lock_the_username_for_a_while(server, admin):
    assert admin.post("/api/v1/users", json={"username": "locky", "password": PASSWORD}).status_code == 201
    anon = Client(server.url)
    for _ in range(5):
        assert_problem(anon.post("/api/v1/auth/login", json={"username": "locky", "password": "not-it-at-all"}), 401)
    # Locked: even the right password is refused, with how long to wait.
    r = anon.post("/api/v1/auth/login", json={"username": "locky", "password": PASSWORD})
    assert_problem(r, 429, "too many failed logins")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Other users are not affected; a username that does not exist locks the same way (no enumeration).
    assert anon.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).status_code == 200
    for _ in range(5):
        anon.post("/api/v1/auth/login", json={"username": "ghost", "password": "whatever-1"})
    assert_problem(anon.post("/api/v1/auth/login", json={"username": "ghost", "password": "whatever-1"}), 429)
