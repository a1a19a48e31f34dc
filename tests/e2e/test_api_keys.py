"""API keys over HTTP: created per project by maintainers and owners with a subset of permissions (and
optionally one deployment), shown once, stored hashed, recognisable by prefix, expiring, revocable at once,
their last use recorded; a key can do no more than its creator and sees no other project."""
import time

import pytest

from conftest import Client, Server, assert_problem, login
from datagen import churn_csv

PASSWORD = "long-enough-password"
INSTANCE = {"age": 70, "income": 1000.0, "plan": "basic", "signup": "2024-03-01", "visits": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("keys")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def env(server):
    """Project 'shop' with two deployments, a maintainer 'mia' and a developer 'dev'; project 'other'."""
    admin = Client(server.url, login(server.url))
    for name in ("mia", "dev"):
        assert admin.post("/api/v1/users", json={"username": name, "password": PASSWORD}).status_code == 201
    for project in ("shop", "other"):
        assert admin.post("/api/v1/projects", json={"name": project}).status_code == 201
    for user, role in (("mia", "maintainer"), ("dev", "developer")):
        r = admin.request("PUT", f"/api/v1/projects/shop/members/{user}", json={"role": role})
        assert r.status_code == 200, r.text
    P = "/api/v1/projects/shop"
    r = admin.post(f"{P}/datasets?name=churn", data=churn_csv(300).encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    run = admin.train({"dataset": "churn", "target": "churned", "task": "binary", "params": {"n_estimators": 10}},
                      project="shop")
    assert admin.post(f"{P}/models/churn/versions", json={"run": run["id"]}).status_code == 201
    for name in ("svc", "svc2"):
        assert admin.post(f"{P}/deployments", json={"name": name, "model": "churn"}).status_code in (200, 201)
    return {"url": server.url, "admin": admin, "mia": Client(server.url, login(server.url, "mia", PASSWORD)),
            "dev": Client(server.url, login(server.url, "dev", PASSWORD))}


def key_client(env, key):
    return Client(env["url"], key)


def create(client, **body):
    return client.post("/api/v1/projects/shop/api-keys", json=body)


def test_a_predict_key_for_one_deployment(env):
    r = create(env["mia"], name="checkout", permissions=["predict"], deployment="svc", expires_in_days=30)
    assert r.status_code == 201, r.text
    made = r.json()
    key = made["key"]
    assert key.startswith(made["prefix"] + "_") and made["prefix"] == "lk_" + made["id"]
    assert made["permissions"] == ["predict"] and made["deployment"] == "svc" and made["state"] == "active"
    assert made["created_by"] == "mia" and made["expires_at"] and made["last_used_at"] is None
    k = key_client(env, key)
    P = "/api/v1/projects/shop"
    assert k.post(f"{P}/deployments/svc/predict", json={"instances": [INSTANCE]}).status_code == 200
    assert k.post("/v2/models/shop:svc/infer", json={"inputs": [
        {"name": c, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [1], "data": [v]}
        for c, v in INSTANCE.items()]}).status_code == 200
    # Only that deployment, only predictions, only this project, nothing a user does across projects.
    assert_problem(k.post(f"{P}/deployments/svc2/predict", json={"instances": [INSTANCE]}), 403, "svc")
    assert_problem(k.post("/v2/models/shop:svc2/infer", json={"inputs": []}), 403, "svc")
    assert_problem(k.get(f"{P}/datasets"), 403, "does not allow")
    assert_problem(k.get("/api/v1/projects/other/datasets"), 404)
    assert_problem(k.get("/api/v1/projects"), 403, "API key")
    assert_problem(k.post("/api/v1/projects", json={"name": "mine"}), 403, "API key")
    assert_problem(create(k, name="more", permissions=["predict"]), 403)
    who = k.get("/api/v1/auth/whoami").json()
    assert who["user"] == "mia" and who["api_key"] == {"id": made["id"], "project": "shop", "deployment": "svc"}
    # The secret is never listed; the last use is.
    keys = env["mia"].get(f"{P}/api-keys").json()["api_keys"]
    listed = next(x for x in keys if x["id"] == made["id"])
    assert "key" not in listed and key not in str(keys)
    assert listed["last_used_at"] is not None
    # A tampered key is refused.
    bad = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert_problem(key_client(env, bad).post(f"{P}/deployments/svc/predict", json={"instances": [INSTANCE]}), 401)


def test_revoke_is_immediate_and_a_key_never_exceeds_its_creator(env):
    P = "/api/v1/projects/shop"
    made = create(env["mia"], name="etl", permissions=["read", "write"]).json()
    k = key_client(env, made["key"])
    assert k.get(f"{P}/datasets").status_code == 200
    r = k.post(f"{P}/runs", json={"dataset": "churn", "target": "churned", "task": "binary",
                                  "params": {"n_estimators": 3}})
    assert r.status_code == 202, r.text
    assert_problem(k.post(f"{P}/deployments", json={"name": "x", "model": "churn"}), 403, "does not allow")
    # The creator demoted to viewer: the key's write permission goes with it.
    admin = env["admin"]
    assert admin.request("PUT", f"{P}/members/mia", json={"role": "viewer"}).status_code == 200
    try:
        assert_problem(k.post(f"{P}/runs", json={"dataset": "churn", "target": "churned", "task": "binary"}),
                       403, "no longer")
        assert k.get(f"{P}/datasets").status_code == 200
    finally:
        assert admin.request("PUT", f"{P}/members/mia", json={"role": "maintainer"}).status_code == 200
    r = env["mia"].delete(f"{P}/api-keys/{made['id']}")
    assert r.status_code == 204, r.text
    assert_problem(k.get(f"{P}/datasets"), 401, "revoked")
    assert_problem(env["mia"].delete(f"{P}/api-keys/{made['id']}"), 404)
    state = {x["id"]: x["state"] for x in env["mia"].get(f"{P}/api-keys").json()["api_keys"]}
    assert state[made["id"]] == "revoked"


def test_expiry(env):
    made = create(env["admin"], name="short", permissions=["read"], expires_in_days=2 / 86400).json()
    k = key_client(env, made["key"])
    assert k.get("/api/v1/projects/shop/datasets").status_code == 200
    time.sleep(2.5)
    assert_problem(k.get("/api/v1/projects/shop/datasets"), 401, "expired")


def test_who_may_create_which_keys(env):
    # Developers cannot manage keys; maintainers cannot grant what they do not have (admins can grant all).
    assert_problem(create(env["dev"], name="d", permissions=["read"]), 403)
    assert create(env["mia"], name="all", permissions=["read", "write", "deploy", "predict"]).status_code == 201
    assert_problem(create(env["mia"], name="x", permissions=["admin"]), 400, "permissions")
    assert_problem(create(env["mia"], name="x", permissions=[]), 400, "permissions")
    assert_problem(create(env["mia"], name="x", permissions="predict"), 400, "permissions")
    assert_problem(create(env["mia"], name="", permissions=["read"]), 400, "name")
    assert_problem(create(env["mia"], name="x" * 65, permissions=["read"]), 400, "name")
    assert_problem(create(env["mia"], name="x", permissions=["read"], expires_in_days=0), 400, "expires_in_days")
    assert_problem(create(env["mia"], name="x", permissions=["read"], owner="me"), 400, "owner")
    assert_problem(create(env["mia"], name="x", permissions=["predict"], deployment="../svc"), 400, "deployment")
    assert_problem(env["mia"].post("/api/v1/projects/other/api-keys", json={"name": "x", "permissions": ["read"]}),
                   404)
