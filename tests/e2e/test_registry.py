"""The model registry over real HTTP: stages (none, staging, production, archived) with one production version
per model, promotion that can require the candidate to beat production on given data, rollback by promoting
an earlier version, and the model card with its lineage."""
import pytest

from conftest import assert_problem
from datagen import churn_csv

P = "/api/v1/projects/default"


@pytest.fixture(scope="module")
def versions(client):
    for name, seed in (("rtrain", 7), ("rholdout", 8)):
        r = client.post(f"{P}/datasets?name={name}", data=churn_csv(rows=500, seed=seed).encode(),
                        headers={"Content-Type": "text/csv"})
        assert r.status_code == 201, r.text
    runs = []
    for params in ({"n_estimators": 1, "max_depth": 1}, {"n_estimators": 60, "max_depth": 3}):
        r = client.post(f"{P}/runs", json={"dataset": "rtrain", "target": "churned", "task": "binary",
                                           "params": params})
        assert r.status_code == 202, r.text
        assert client.wait_job(r.json()["job"])["state"] == "succeeded"
        runs.append(r.json()["run"])
    for run in runs:
        assert client.post(f"{P}/models/churner/versions", json={"run": run}).status_code == 201
    return runs


def stage(client, version, **body):
    return client.post(f"{P}/models/churner/versions/{version}/stage", json=body)


def stages(client):
    return {v["version"]: v["stage"] for v in client.get(f"{P}/models/churner").json()["versions"]}


def test_stages_promotion_and_rollback(client, versions):
    assert stages(client) == {1: "none", 2: "none"}
    assert stage(client, 1, stage="production").status_code == 200
    # The stronger model beats production on the holdout data and takes its place; v1 is archived.
    r = stage(client, 2, stage="production", require_better=True, evaluate_on={"dataset": "rholdout"})
    assert r.status_code == 200, r.text
    c = r.json()["comparison"]
    assert c["metric"] == "roc_auc" and c["rows"] == 500
    assert c["candidate"]["score"] > c["production"]["score"], c
    assert stages(client) == {1: "archived", 2: "production"}
    # The weak one cannot come back by merit ...
    r = stage(client, 1, stage="production", require_better=True, evaluate_on={"dataset": "rholdout"},
              metric="log_loss")
    assert_problem(r, 409, "require_better", "does not beat")
    assert stages(client) == {1: "archived", 2: "production"}
    # ... but a rollback (no condition) is one call.
    assert stage(client, 1, stage="production").status_code == 200
    assert stages(client) == {1: "production", 2: "archived"}
    assert stage(client, 2, stage="staging").json()["stage"] == "staging"


def test_bad_stage_requests(client, versions):
    assert_problem(stage(client, 2, stage="live"), 400, "stage")
    assert_problem(stage(client, 2, stage="production", require_better=True), 400, "evaluate_on")
    assert_problem(stage(client, 2, stage="production", require_better="yes"), 400, "require_better")
    assert_problem(stage(client, 2, stage="production", require_better=True, evaluate_on={"dataset": "rholdout"},
                         metric="rmse"), 400, "metric")
    assert_problem(stage(client, 2, stage="staging", force=True), 400, "force")
    assert stage(client, 9, stage="staging").status_code == 404


def test_model_card_has_lineage_and_the_owners_words(client, versions):
    r = client.patch(f"{P}/models/churner/versions/2", json={"intended_use": "monthly churn risk",
                                                            "limitations": "2024 customers only"})
    assert r.status_code == 200, r.text
    card = client.get(f"{P}/models/churner/versions/2").json()["card"]
    assert card["intended_use"] == "monthly churn risk" and card["limitations"] == "2024 customers only"
    assert card["training"]["run"] == versions[1] and card["training"]["learner"] == "xgboost"
    assert card["training"]["params"]["n_estimators"] == 60
    assert card["data"][0]["dataset"] == "rtrain" and card["data"][0]["rows"] == 500
    assert card["metrics"]["roc_auc"] > 0.5 and card["signature"]["inputs"]
    assert_problem(client.patch(f"{P}/models/churner/versions/2", json={"owner": "x"}), 400, "owner")
    assert_problem(client.patch(f"{P}/models/churner/versions/2", json={"limitations": 5}), 400, "limitations")


def test_import_an_xgboost_model_and_serve_it_with_the_same_predictions(client):
    import base64

    import numpy as np
    import pandas as pd
    import xgboost as xgb
    rng = np.random.default_rng(3)
    n = 400
    X = pd.DataFrame({"age": rng.integers(18, 80, n).astype(float), "spend": rng.normal(50, 20, n),
                      "plan": pd.Categorical(rng.choice(["basic", "pro", "team"], n),
                                             categories=["basic", "pro", "team"])})
    y = ((X.age > 50) ^ (X.plan == "pro")).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "tree_method": "hist", "max_depth": 3,
                         "max_cat_to_onehot": 1}, xgb.DMatrix(X, y, enable_categorical=True), 20)
    signature = {"task": "binary", "target": "churned", "labels": [0, 1],
                 "inputs": [{"name": "age", "type": "float"}, {"name": "spend", "type": "float"},
                            {"name": "plan", "type": "string", "categories": ["basic", "pro", "team"]}]}
    for fmt in ("json", "ubj"):
        raw = bytes(booster.save_raw(fmt))
        r = client.post(f"{P}/models/imported/import", json={
            "model_base64": base64.b64encode(raw).decode(), "signature": signature,
            "description": "trained in a notebook"})
        assert r.status_code == 201, r.text
        version = r.json()["version"]
        card = client.get(f"{P}/models/imported/versions/{version}").json()["card"]
        assert card["training"]["imported"] is True and card["description"] == "trained in a notebook"
        run = client.get(f"{P}/runs/{card['training']['run']}").json()
        assert run["kind"] == "import" and run["state"] == "succeeded"
    assert client.post(f"{P}/deployments", json={"name": "imported", "model": "imported"}).status_code == 201
    rows = X.head(50)
    instances = [{"age": float(a), "spend": float(s), "plan": str(p)} for a, s, p in
                 zip(rows.age, rows.spend, rows.plan)]
    r = client.post(f"{P}/deployments/imported/predict", json={"instances": instances})
    assert r.status_code == 200, r.text
    ours = np.array(r.json()["predictions"])
    theirs = booster.predict(xgb.DMatrix(rows, enable_categorical=True))
    assert np.max(np.abs(ours - theirs)) < 1e-6

    def bad(body, field):
        assert_problem(client.post(f"{P}/models/imported/import", json=body), 400, field)
    good = base64.b64encode(bytes(booster.save_raw("json"))).decode()
    bad({"model_base64": "not base64!", "signature": signature}, "model_base64")
    bad({"model_base64": base64.b64encode(b"garbage").decode(), "signature": signature}, "model")
    bad({"model_base64": good}, "signature")
    bad({"model_base64": good, "signature": {**signature, "inputs": signature["inputs"][:2]}}, "model")  # 2 != 3
    bad({"model_base64": good, "signature": {**signature, "task": "regression"}}, "model")  # objective mismatch
    bad({"model_base64": good, "signature": {**signature, "labels": None}}, "signature.labels")
    bad({"model_base64": good, "signature": signature, "extra": 1}, "extra")


def test_compression_prunes_and_distills_into_new_versions_with_a_report(client, versions):
    def compress(body):
        r = client.post(f"{P}/models/churner/versions/2/compress", json=body)
        assert r.status_code == 202, r.text
        job = client.wait_job(r.json()["job"])
        assert job["state"] == "succeeded", job
        return job["result"]
    pruned = compress({"method": "prune", "params": {"max_rounds": 10}})
    rep = pruned["report"]
    assert rep["before"]["trees"] == 60 and rep["after"]["trees"] == 10, rep
    assert rep["after"]["bundle_bytes"] < rep["before"]["bundle_bytes"]
    assert rep["evaluated_on"]["dataset"] == "rtrain"
    distilled = compress({"method": "distill", "params": {"max_depth": 2, "n_estimators": 20}})
    rep = distilled["report"]
    assert rep["after"]["trees"] == 20 and rep["after"]["predict_us"] > 0
    assert rep["after"]["metrics"]["roc_auc"] > rep["before"]["metrics"]["roc_auc"] - 0.1, rep
    v = client.get(f"{P}/models/churner/versions/{distilled['version']}").json()
    assert v["card"]["training"]["kind"] == "compress"
    # The student serves the teacher's requests.
    assert client.post(f"{P}/deployments", json={"name": "student", "model": "churner",
                                                 "version": distilled["version"]}).status_code == 201
    p = client.post(f"{P}/deployments/student/predict", json={"instances": [
        {"age": 70, "income": 40000, "plan": "basic", "signup": "2024-02-02", "visits": 1}]})
    assert p.status_code == 200, p.text

    def bad(body, field):
        assert_problem(client.post(f"{P}/models/churner/versions/2/compress", json=body), 400, field)
    bad({"method": "zip"}, "method")
    bad({"method": "distill", "params": {"max_depth": 99}}, "params.max_depth")
    bad({"method": "prune", "params": {"max_depth": 2}}, "params.max_depth")
    bad({"method": "prune", "extra": 1}, "extra")
