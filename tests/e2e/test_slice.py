"""The first end-to-end slice over real HTTP: import a CSV, train, register, deploy, predict."""
import time

import requests

from conftest import assert_problem
from datagen import churn_csv, iris_like_csv, regression_csv

P = "/api/v1/projects/default"


def import_csv(client, name, text):
    r = client.post(f"{P}/datasets?name={name}", data=text.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    return r.json()


def train(client, dataset, target, task, params=None, **extra):
    body = {"dataset": dataset, "target": target, "task": task, "learner": "xgboost",
            "params": params or {"n_estimators": 30, "max_depth": 4}, "split": {"test_fraction": 0.25, "seed": 1}}
    body.update(extra)
    r = client.post(f"{P}/runs", json=body)
    assert r.status_code == 202, r.text
    out = r.json()
    job = client.wait_job(out["job"])
    run = client.get(f"{P}/runs/{out['run']}").json()
    return job, run


def test_health_ready_metrics(server, anon):
    assert anon.get("/healthz").json() == {"status": "ok"}
    assert anon.get("/readyz").status_code == 200
    m = anon.get("/metrics")
    assert m.status_code == 200
    assert "process_resident_memory_bytes" in m.text
    assert "lathe_jobs" in m.text


def test_request_id_is_echoed_or_generated(client):
    r = client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert r.headers["X-Request-Id"] == "abc-123"
    r = client.get("/healthz")
    assert len(r.headers["X-Request-Id"]) >= 8


def test_openapi_lists_every_route_with_its_permission(client):
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert "post" in paths["/api/v1/projects/{project}/datasets"]
    assert "post" in paths["/api/v1/projects/{project}/deployments/{name}/predict"]
    for path, ops in paths.items():
        for op in ops.values():
            assert "x-lathe-permission" in op, path


def test_binary_slice_import_train_register_deploy_predict(client):
    d = import_csv(client, "churn", churn_csv())
    assert d["name"] == "churn" and d["version"] == 1 and d["rows"] == 400
    types = {c["name"]: c["type"] for c in d["columns"]}
    assert types == {"age": "integer", "income": "float", "plan": "string", "signup": "datetime",
                     "visits": "integer", "churned": "integer"}

    # A second import of the same name makes version 2.
    assert import_csv(client, "churn", churn_csv(rows=100, seed=9))["version"] == 2
    ds = client.get(f"{P}/datasets/churn").json()
    assert [v["version"] for v in ds["versions"]] == [1, 2]
    assert any(x["name"] == "churn" for x in client.get(f"{P}/datasets").json()["datasets"])
    rows = client.get(f"{P}/datasets/churn/versions/1/rows?offset=10&limit=5").json()
    assert rows["total"] == 400 and len(rows["rows"]) == 5
    assert set(rows["rows"][0]) == set(types)

    job, run = train(client, "churn", "churned", "binary", version=1)
    assert job["state"] == "succeeded", job
    assert run["state"] == "succeeded"
    m = run["metrics"]
    for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert k in m, m
    assert m["roc_auc"] > 0.75, m  # the label is learnable from the features
    assert run["params"]["n_estimators"] == 30

    r = client.post(f"{P}/models/churn-model/versions", json={"run": run["id"]})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1
    assert client.get(f"{P}/models/churn-model").json()["versions"][0]["run"] == run["id"]

    r = client.post(f"{P}/deployments", json={"name": "churn-api", "model": "churn-model", "version": 1})
    assert r.status_code == 201, r.text
    assert client.get(f"{P}/deployments/churn-api").json()["state"] == "ready"

    inst = [{"age": 70, "income": 40000.0, "plan": "basic", "signup": "2024-03-01", "visits": 1},
            {"age": 25, "income": None, "plan": "team", "signup": "2024-05-11", "visits": 29}]
    r = client.post(f"{P}/deployments/churn-api/predict", json={"instances": inst})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == "churn-model" and out["version"] == 1
    p = out["predictions"]
    assert len(p) == 2 and all(0.0 <= x <= 1.0 for x in p)
    assert p[0] > p[1]  # the risky customer scores higher

    # MLflow-style dataframe_split gives the same answer.
    split = {"dataframe_split": {"columns": list(inst[0]), "data": [list(i.values()) for i in inst]}}
    r2 = client.post(f"{P}/deployments/churn-api/predict", json=split)
    assert r2.status_code == 200, r2.text
    assert r2.json()["predictions"] == p


def test_multiclass_and_regression(client):
    import_csv(client, "iris", iris_like_csv())
    job, run = train(client, "iris", "species", "multiclass")
    assert job["state"] == "succeeded", job
    assert run["metrics"]["accuracy"] > 0.8
    client.post(f"{P}/models/iris/versions", json={"run": run["id"]})
    assert client.post(f"{P}/deployments", json={"name": "iris", "model": "iris"}).status_code == 201
    r = client.post(f"{P}/deployments/iris/predict",
                    json={"instances": [{"sepal_length": 5.0, "sepal_width": 3.4, "petal_length": 1.4}]})
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    assert pred["label"] == "setosa"
    assert abs(sum(pred["probabilities"].values()) - 1.0) < 1e-4

    import_csv(client, "houses", regression_csv())
    job, run = train(client, "houses", "price", "regression", params={"n_estimators": 80, "max_depth": 4})
    assert job["state"] == "succeeded", job
    for k in ("rmse", "mae", "r2"):
        assert k in run["metrics"]
    assert run["metrics"]["r2"] > 0.8


def test_job_shows_progress_log_and_can_be_cancelled(client):
    import_csv(client, "big", churn_csv(rows=3000, seed=11))
    r = client.post(f"{P}/runs", json={"dataset": "big", "target": "churned", "task": "binary",
                                       "params": {"n_estimators": 5000, "max_depth": 8, "learning_rate": 0.01}})
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]
    deadline = time.time() + 30
    while client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "queued" and time.time() < deadline:
        time.sleep(0.05)
    c = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert c.status_code == 200, c.text
    job = client.wait_job(job_id)
    assert job["state"] == "cancelled", job
    run = client.get(f"{P}/runs/{r.json()['run']}").json()
    assert run["state"] == "cancelled"
    # Cancelling a finished job is a conflict, not a crash.
    assert_problem(client.post(f"/api/v1/jobs/{job_id}/cancel"), 409)


def test_logout_revokes_the_token(server):
    from conftest import Client, login
    token = login(server.url)
    c = Client(server.url, token)
    assert c.get("/api/v1/auth/whoami").json()["user"] == "admin"
    assert c.post("/api/v1/auth/logout").status_code == 204
    assert_problem(c.get("/api/v1/auth/whoami"), 401)


def test_keep_alive_many_requests_one_connection(client):
    s = requests.Session()
    for _ in range(50):
        assert s.get(client.url + "/healthz").status_code == 200


def test_switching_a_deployment_version(client):
    import_csv(client, "swap", churn_csv(rows=300, seed=21))
    runs = []
    for depth in (2, 5):
        job, run = train(client, "swap", "churned", "binary", params={"n_estimators": 10, "max_depth": depth})
        assert job["state"] == "succeeded", job
        runs.append(run["id"])
        assert client.post(f"{P}/models/swap/versions", json={"run": run["id"]}).status_code == 201
    r = client.post(f"{P}/deployments", json={"name": "swap", "model": "swap", "version": 1})
    assert r.status_code == 201, r.text
    inst = {"instances": [{"age": 50, "income": 1.0, "plan": "pro", "signup": "2024-01-01", "visits": 4}]}
    assert client.post(f"{P}/deployments/swap/predict", json=inst).json()["version"] == 1
    assert_problem(client.post(f"{P}/deployments", json={"name": "swap", "model": "swap"}), 409, "exists")
    r = client.patch(f"{P}/deployments/swap", json={"version": 2})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert client.post(f"{P}/deployments/swap/predict", json=inst).json()["version"] == 2
    # A version that does not exist is refused and the deployment keeps serving the current one.
    assert_problem(client.patch(f"{P}/deployments/swap", json={"version": 99}), 404)
    assert client.post(f"{P}/deployments/swap/predict", json=inst).json()["version"] == 2
    assert client.delete(f"{P}/deployments/swap").status_code == 204
    assert_problem(client.post(f"{P}/deployments/swap/predict", json=inst), 404)


def test_registering_an_unfinished_run_is_a_conflict(client):
    import_csv(client, "slow", churn_csv(rows=2000, seed=4))
    r = client.post(f"{P}/runs", json={"dataset": "slow", "target": "churned", "task": "binary",
                                       "params": {"n_estimators": 5000, "max_depth": 8, "learning_rate": 0.01}})
    assert r.status_code == 202
    reg = client.post(f"{P}/models/slow/versions", json={"run": r.json()["run"]})
    assert_problem(reg, 409, "succeeded")
    client.post(f"/api/v1/jobs/{r.json()['job']}/cancel")
    assert client.wait_job(r.json()["job"])["state"] in ("cancelled", "succeeded")
