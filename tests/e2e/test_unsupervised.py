"""Unsupervised learners over real HTTP: k-means (k chosen by silhouette), PCA and isolation forest are trained
without a target, registered, deployed and scored (online and in batch); the searches and exports that need a
supervised model refuse them with a clear 4xx."""
import math
import random

import pytest

from conftest import assert_problem

P = "/api/v1/projects/default"
CENTERS = {"north": (0.0, 10.0), "east": (10.0, 0.0), "south": (0.0, -10.0)}


def upload(client, name, lines):
    r = client.post(f"{P}/datasets?name={name}", data=("\n".join(lines) + "\n").encode(),
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text


def deploy(client, name, run):
    r = client.post(f"{P}/models/{name}/versions", json={"run": run["id"]})
    assert r.status_code == 201, r.text
    r = client.post(f"{P}/deployments", json={"name": name, "model": name, "version": r.json()["version"]})
    assert r.status_code in (200, 201), r.text


def predict(client, name, instances):
    r = client.post(f"{P}/deployments/{name}/predict", json={"instances": instances})
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


@pytest.fixture(scope="module")
def data(client):
    rnd = random.Random(5)
    lines = ["id,x,y,blob"]
    for i in range(600):
        blob = list(CENTERS)[i % 3]
        cx, cy = CENTERS[blob]
        lines.append(f"id{i},{rnd.gauss(cx, 1.0):.4f},{rnd.gauss(cy, 1.0):.4f},{blob}")
    upload(client, "blobs", lines)
    # Three columns driven by two hidden factors: two components explain almost everything.
    lines = ["a,b,c,d"]
    for _ in range(400):
        u, v = rnd.gauss(0, 3), rnd.gauss(0, 1)
        lines.append(f"{u:.4f},{2 * u + rnd.gauss(0, 0.05):.4f},{v:.4f},{u - v + rnd.gauss(0, 0.05):.4f}")
    upload(client, "factors", lines)
    # Normal traffic and a few very unusual requests.
    lines = ["latency,bytes,method"]
    for _ in range(500):
        lines.append(f"{rnd.gauss(100, 10):.2f},{rnd.gauss(5000, 500):.0f},{rnd.choice(['GET', 'POST'])}")
    for _ in range(6):
        lines.append(f"{rnd.uniform(900, 1000):.2f},{rnd.uniform(90000, 99999):.0f},DELETE")
    upload(client, "traffic", lines)


def test_kmeans_chooses_k_and_serves_cluster_ids(client, data):
    run = client.train({"dataset": "blobs", "learner": "kmeans", "target": "blob", "params": {"max_clusters": 6}})
    assert run["task"] == "clustering"
    m = run["metrics"]
    assert m["n_clusters"] == 3, m
    assert m["silhouette"] > 0.5 and m["davies_bouldin"] < 1.0, m
    assert sorted(m["cluster_sizes"]) == [200, 200, 200], m
    assert [p["k"] for p in run["curves"]["elbow"]] == [2, 3, 4, 5, 6]
    best = max(run["curves"]["elbow"], key=lambda p: p["silhouette"])
    assert best["k"] == 3
    # The target column (the true blob) and the identifier are not features.
    inputs = [i["name"] for i in client.get(f"{P}/runs/{run['id']}").json()["signature"]["inputs"]]
    assert inputs == ["x", "y"]
    deploy(client, "segments", run)
    points = [{"x": cx, "y": cy} for cx, cy in CENTERS.values()]
    out = predict(client, "segments", points + [{"x": 0.3, "y": 9.5}])
    clusters = [p["cluster"] for p in out]
    assert len(set(clusters[:3])) == 3, out  # each center its own cluster
    assert clusters[3] == clusters[0]        # a point near the north center joins it
    assert all(p["distance"] >= 0 for p in out)


def test_kmeans_with_fixed_k_and_batch_scoring(client, data):
    run = client.train({"dataset": "blobs", "learner": "kmeans", "task": "clustering",
                         "params": {"n_clusters": 2, "n_init": 2}, "split": {"seed": 3}})
    assert run["metrics"]["n_clusters"] == 2 and "elbow" not in run["curves"]
    deploy(client, "two", run)
    r = client.post(f"{P}/batch-predictions", json={"deployment": "two", "dataset": "blobs", "output": "blobs_scored"})
    assert r.status_code == 202, r.text
    job = client.wait_job(r.json()["job"])
    assert job["state"] == "succeeded", job
    cols = {c["name"]: c["type"] for c in job["result"]["columns"]}
    assert cols["cluster"] == "integer" and cols["distance"] == "float", cols
    rows = client.get(f"{P}/datasets/blobs_scored/versions/1/rows?limit=600").json()["rows"]
    assert {r["cluster"] for r in rows} == {0, 1}
    # Same data, params and seed: the same model.
    again = client.train({"dataset": "blobs", "learner": "kmeans", "task": "clustering",
                           "params": {"n_clusters": 2, "n_init": 2}, "split": {"seed": 3}})
    assert again["metrics"]["inertia"] == run["metrics"]["inertia"]


def test_pca_components(client, data):
    run = client.train({"dataset": "factors", "learner": "pca", "params": {"variance_target": 0.99}})
    m = run["metrics"]
    assert run["task"] == "decomposition"
    assert m["n_components"] == 2 and m["cumulative_variance"] > 0.99, m
    assert m["explained_variance_ratio"][0] > m["explained_variance_ratio"][1]
    assert len(run["curves"]["scree"]["explained_variance_ratio"]) == 2
    deploy(client, "factors", run)
    out = predict(client, "factors", [{"a": 0, "b": 0, "c": 0, "d": 0}, {"a": 3, "b": 6, "c": 1, "d": 2},
                                      {"a": 3, "b": -6, "c": 1, "d": 9}])
    assert all(len(p["components"]) == 2 for p in out)
    # A row that breaks the correlations reconstructs badly.
    assert out[2]["reconstruction_error"] > 10 * max(out[0]["reconstruction_error"], out[1]["reconstruction_error"], 0.01)
    run = client.train({"dataset": "factors", "learner": "pca", "params": {"n_components": 3}})
    assert run["metrics"]["n_components"] == 3


def test_isolation_forest_flags_the_unusual(client, data):
    run = client.train({"dataset": "traffic", "learner": "isolation_forest",
                         "params": {"contamination": 0.02, "n_estimators": 200}})
    m = run["metrics"]
    assert run["task"] == "anomaly"
    assert 0.4 < m["threshold"] < 0.8 and 5 <= m["anomalies"] <= 15, m
    assert sum(run["curves"]["score_histogram"]["counts"]) == 506
    deploy(client, "traffic", run)
    out = predict(client, "traffic", [{"latency": 101, "bytes": 5100, "method": "GET"},
                                      {"latency": 950, "bytes": 95000, "method": "DELETE"}])
    assert out[0]["is_anomaly"] is False and out[1]["is_anomaly"] is True, out
    assert out[1]["anomaly_score"] > out[0]["anomaly_score"] + 0.2


def test_unsupervised_bad_input(client, data):
    assert_problem(client.post(f"{P}/runs", json={"dataset": "blobs", "learner": "kmeans", "task": "binary",
                                                  "target": "blob"}), 400, "task")
    assert_problem(client.post(f"{P}/runs", json={"dataset": "blobs", "learner": "kmeans",
                                                  "params": {"n_clusters": 1}}), 400, "params.n_clusters")
    assert_problem(client.post(f"{P}/runs", json={"dataset": "blobs", "learner": "kmeans",
                                                  "params": {"n_clusters": 999}}), 400, "params.n_clusters")
    assert_problem(client.post(f"{P}/runs", json={"dataset": "blobs", "learner": "kmeans", "target": "nope"}),
                   400, "target")
    assert_problem(client.post(f"{P}/runs", json={"dataset": "blobs", "learner": "pca",
                                                  "params": {"variance_target": 1.5}}), 400, "variance_target")
    assert_problem(client.post(f"{P}/runs", json={"dataset": "blobs", "task": "clustering"}), 400, "task")
    upload(client, "tiny", ["x,y", "1,2", "3,4", "5,6"])
    assert_problem(client.post(f"{P}/runs", json={"dataset": "tiny", "learner": "kmeans"}), 400, "rows")
    # Searches and AutoML need a metric of predictions against a target.
    assert_problem(client.post(f"{P}/tune", json={"dataset": "blobs", "learner": "kmeans", "time_budget_s": 5}),
                   400, "task")
    assert_problem(client.post(f"{P}/automl", json={"dataset": "blobs", "target": "blob", "learners": ["kmeans"]}),
                   400, "learners")
    # Supervised-only features of a registered clustering model are a 409 that says why.
    assert_problem(client.get(f"{P}/models/segments/versions/1/onnx"), 409, "clustering")
    assert client.post(f"{P}/models/segments/versions/1/stage", json={"stage": "production"}).status_code == 200
    run = client.get(f"{P}/models/segments/versions/1").json()["run"]
    assert client.post(f"{P}/models/segments/versions", json={"run": run}).status_code == 201
    r = client.post(f"{P}/models/segments/versions/2/stage",
                    json={"stage": "production", "require_better": True, "evaluate_on": {"dataset": "blobs"}})
    assert_problem(r, 409, "target")
    r = client.post(f"{P}/deployments/segments/predict?explain=true", json={"instances": [{"x": 0, "y": 0}]})
    assert r.status_code in (400, 409), r.text
    r = client.post(f"{P}/deployments/segments/predict", json={"instances": [{"x": "far", "y": 0}]})
    assert_problem(r, 400, "x")
    # Learners list shows the unsupervised ones with their tasks.
    learners = {l["name"]: l for l in client.get("/api/v1/learners").json()["learners"]}
    assert learners["kmeans"]["tasks"] == ["clustering"] and learners["isolation_forest"]["tasks"] == ["anomaly"]
    assert math.isclose(learners["isolation_forest"]["params"][2]["default"], 0.1)
