"""Metering and quotas: predictions, rows scored, training CPU-seconds and storage are metered per project, API
key and day; a price table turns a month's usage into a statement (JSON and CSV); quotas on predictions per month,
concurrent jobs, training CPU-seconds and storage refuse the call with a status naming the quota."""
import csv
import io
import time

import pytest

from conftest import Client, Server, assert_problem, login
from datagen import churn_csv

PASSWORD = "long-enough-password"
INSTANCE = {"age": 70, "income": 1000.0, "plan": "basic", "signup": "2024-03-01", "visits": 2}
PRICES = "predictions=0.5,rows_scored=0.25,training_cpu_seconds=0.01"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("usage"), extra_args=["--prices", PRICES, "--currency", "EUR"]).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def env(server):
    admin = Client(server.url, login(server.url))
    assert admin.post("/api/v1/users", json={"username": "olga", "password": PASSWORD}).status_code == 201
    olga = Client(server.url, login(server.url, "olga", PASSWORD))
    assert olga.post("/api/v1/projects", json={"name": "shop"}).status_code == 201
    P = "/api/v1/projects/shop"
    r = olga.post(f"{P}/datasets?name=churn", data=churn_csv(300).encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    run = olga.train({"dataset": "churn", "target": "churned", "task": "binary", "params": {"n_estimators": 10}},
                     project="shop")
    assert olga.post(f"{P}/models/churn/versions", json={"run": run["id"]}).status_code == 201
    assert olga.post(f"{P}/deployments", json={"name": "svc", "model": "churn"}).status_code in (200, 201)
    r = olga.post(f"{P}/api-keys", json={"name": "app", "permissions": ["predict"]})
    assert r.status_code == 201, r.text
    return {"admin": admin, "olga": olga, "key": Client(server.url, r.json()["key"]), "key_id": r.json()["id"], "P": P}


def test_predictions_rows_and_training_are_metered_per_key(env):
    P, key, olga = env["P"], env["key"], env["olga"]
    for _ in range(3):
        assert key.post(f"{P}/deployments/svc/predict", json={"instances": [INSTANCE, INSTANCE]}).status_code == 200
    assert olga.post(f"{P}/deployments/svc/predict", json={"instances": [INSTANCE]}).status_code == 200
    # A refused call is not metered.
    assert key.post(f"{P}/deployments/svc/predict", json={"instances": [{"age": "old"}]}).status_code == 400
    usage = olga.get(f"{P}/usage").json()["usage"]
    by = {(u["api_key"], u["metric"]): u["quantity"] for u in usage}
    assert by[(env["key_id"], "predictions")] == 3 and by[(env["key_id"], "rows_scored")] == 6
    assert by[(None, "predictions")] == 1 and by[(None, "rows_scored")] == 1
    assert by[(None, "training_cpu_seconds")] > 0
    assert {u["day"] for u in usage} == {time.strftime("%Y-%m-%d", time.gmtime())}
    # The statement prices the month's totals with the price table.
    r = olga.get(f"{P}/statement")
    assert r.status_code == 200, r.text
    st = r.json()
    lines = {line["metric"]: line for line in st["lines"]}
    assert st["currency"] == "EUR" and lines["predictions"]["quantity"] == 4
    assert lines["predictions"]["amount"] == 2.0 and lines["rows_scored"]["amount"] == 1.75
    cpu = lines["training_cpu_seconds"]
    assert abs(cpu["amount"] - round(cpu["quantity"] * 0.01, 6)) < 1e-6
    assert abs(st["total"] - sum(line["amount"] for line in st["lines"])) < 1e-6
    assert st["by_key"][env["key_id"]]["predictions"] == 3
    r = olga.get(f"{P}/statement", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert r.headers["Content-Type"].startswith("text/csv") and rows[-1]["metric"] == "total"
    assert abs(float(rows[-1]["amount"]) - st["total"]) < 1e-6
    assert_problem(olga.get(f"{P}/statement", params={"month": "2026-13"}), 400, "month")
    assert_problem(olga.get(f"{P}/usage", params={"from": "yesterday"}), 400, "from")
    # Admins see every project's usage.
    assert any(u["project"] == "shop" for u in env["admin"].get("/api/v1/admin/usage").json()["usage"])


def test_quotas_are_set_by_admins_and_enforced(env):
    P, key, olga, admin = env["P"], env["key"], env["olga"], env["admin"]
    assert_problem(olga.request("PUT", f"{P}/quota", json={"predictions_per_month": 1}), 403)
    assert_problem(admin.request("PUT", f"{P}/quota", json={"predictions": 1}), 400, "unknown quota")
    assert_problem(admin.request("PUT", f"{P}/quota", json={"concurrent_jobs": -1}), 400, "concurrent_jobs")
    used = olga.get(f"{P}/quota").json()["used"]["predictions_this_month"]
    r = admin.request("PUT", f"{P}/quota", json={"predictions_per_month": int(used) + 1})
    assert r.status_code == 200, r.text
    assert key.post(f"{P}/deployments/svc/predict", json={"instances": [INSTANCE]}).status_code == 200
    assert_problem(key.post(f"{P}/deployments/svc/predict", json={"instances": [INSTANCE]}), 429,
                   "predictions_per_month", "shop")
    # Other quotas stay as they were when one is changed; 0 lifts a quota.
    # Training until this month's CPU-seconds pass 1, then a quota of 1 refuses the next run.
    for _ in range(20):
        if olga.get(f"{P}/quota").json()["used"]["training_cpu_seconds_this_month"] >= 1:
            break
        olga.train({"dataset": "churn", "target": "churned", "task": "binary", "params": {"n_estimators": 200}},
                   project="shop")
    r = admin.request("PUT", f"{P}/quota", json={"predictions_per_month": 0, "training_cpu_seconds_per_month": 1})
    assert r.json()["quota"] == {"predictions_per_month": 0, "training_cpu_seconds_per_month": 1,
                                 "concurrent_jobs": 0, "storage_bytes": 0}
    assert key.post(f"{P}/deployments/svc/predict", json={"instances": [INSTANCE]}).status_code == 200
    assert_problem(olga.post(f"{P}/runs", json={"dataset": "churn", "target": "churned", "task": "binary"}), 403,
                   "training_cpu_seconds_per_month")
    assert admin.request("PUT", f"{P}/quota", json={"training_cpu_seconds_per_month": 0, "storage_bytes": 1}).ok
    assert_problem(olga.post(f"{P}/datasets?name=more", data=b"a\n1\n", headers={"Content-Type": "text/csv"}), 403,
                   "storage_bytes")
    assert [d["name"] for d in olga.get(f"{P}/datasets").json()["datasets"]] == ["churn"]
    assert admin.request("PUT", f"{P}/quota", json={"storage_bytes": 0, "concurrent_jobs": 1}).ok
    r = olga.post(f"{P}/runs", json={"dataset": "churn", "target": "churned", "task": "binary",
                                     "params": {"n_estimators": 300}})
    assert r.status_code == 202, r.text
    second = olga.post(f"{P}/runs", json={"dataset": "churn", "target": "churned", "task": "binary"})
    assert_problem(second, 429, "concurrent_jobs")
    olga.wait_job(r.json()["job"])
    q = olga.get(f"{P}/quota").json()
    assert q["quota"]["concurrent_jobs"] == 1 and q["used"]["storage_bytes"] > 0
