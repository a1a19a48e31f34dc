"""Rate limits over HTTP (token buckets): per client address, per user, per API key (server flags) and per
caller of a deployment (its limits); a refused request is a 429 problem naming the limit, with Retry-After,
and every limited response carries RateLimit-Limit / -Remaining / -Reset."""
import subprocess
import time

import pytest

from conftest import LATHE_BIN, Client, Server, assert_problem, login
from datagen import churn_csv

P = "/api/v1/projects/default"
INSTANCE = {"age": 70, "income": 1000.0, "plan": "basic", "signup": "2024-03-01", "visits": 2}


# Slow refills (one request back every 2 s) keep the counts exact however slow the machine is.
@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("rl"), extra_args=["--rate-limit-user", "0.5/5", "--rate-limit-key", "0.5/2"])
    s.start()
    yield s
    s.stop()


def test_per_user_and_per_key(limited):
    admin = Client(limited.url, login(limited.url))  # logging in is public: not limited per user
    remaining = []
    for _ in range(5):
        r = admin.get("/api/v1/auth/whoami")
        assert r.status_code == 200, r.text
        remaining.append(int(r.headers["RateLimit-Remaining"]))
        assert r.headers["RateLimit-Limit"] == "5"
    assert remaining == [4, 3, 2, 1, 0]
    r = admin.get("/api/v1/auth/whoami")
    assert_problem(r, 429, "per user", "retry")
    assert int(r.headers["Retry-After"]) >= 1 and r.headers["RateLimit-Remaining"] == "0"
    time.sleep(2.1)  # one request back
    r = admin.post(f"{P}/api-keys", json={"name": "k", "permissions": ["read"]})
    assert r.status_code == 201, r.text
    k = Client(limited.url, r.json()["key"])
    assert [k.get(f"{P}/datasets").status_code for _ in range(3)] == [200, 200, 429]
    assert_problem(k.get(f"{P}/datasets"), 429, "per API key")
    # The user's own bucket is separate from the key's.
    time.sleep(2.1)
    assert admin.get(f"{P}/datasets").status_code == 200


def test_per_deployment_caller(client):
    admin = client
    r = admin.post(f"{P}/datasets?name=churn", data=churn_csv(200).encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    run = admin.train({"dataset": "churn", "target": "churned", "task": "binary", "params": {"n_estimators": 5}})
    assert admin.post(f"{P}/models/churn/versions", json={"run": run["id"]}).status_code == 201
    r = admin.post(f"{P}/deployments", json={"name": "slow", "model": "churn",
                                             "limits": {"rate_per_second": 0.5, "rate_burst": 2}})
    assert r.status_code in (200, 201), r.text
    assert r.json()["limits"]["rate_per_second"] == 0.5
    codes = [admin.post(f"{P}/deployments/slow/predict", json={"instances": [INSTANCE]}) for _ in range(3)]
    assert [c.status_code for c in codes] == [200, 200, 429]
    assert_problem(codes[2], 429, "deployment 'slow'")
    assert int(codes[2].headers["Retry-After"]) >= 1 and codes[1].headers["RateLimit-Remaining"] == "0"
    # Other deployments and the rest of the API are not limited.
    assert admin.get(f"{P}/deployments/slow").status_code == 200
    assert_problem(admin.post(f"{P}/deployments", json={"name": "bad", "model": "churn",
                                                        "limits": {"rate_per_second": 1, "rate_burst": 0.5}}),
                   400, "limits.rate_burst")
    assert_problem(admin.post(f"{P}/deployments", json={"name": "bad", "model": "churn",
                                                        "limits": {"rate_per_second": -1}}),
                   400, "limits.rate_per_second")


def test_per_client_address(tmp_path):
    s = Server(tmp_path, extra_args=["--rate-limit-ip", "0.5/3"]).start()
    try:
        anon = Client(s.url)
        codes = [anon.get("/api/v1/learners", headers={"Authorization": "Bearer nope"}).status_code for _ in range(4)]
        # Refused by the address limit before any credential is looked at.
        assert codes == [401, 401, 401, 429], codes
        assert [anon.get("/healthz").status_code for _ in range(5)] == [200] * 5  # health checks are not limited
    finally:
        s.stop()


def test_bad_limit_flags_refuse_to_start(tmp_path):
    r = subprocess.run([LATHE_BIN, "serve", "--data-dir", str(tmp_path), "--rate-limit-ip", "fast"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "rate-limit-ip" in r.stderr
