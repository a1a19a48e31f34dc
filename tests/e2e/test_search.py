"""Tuning and AutoML over real HTTP: a search runs as a job, each trial becomes a child run, the search run keeps
the chosen model (registered and served like any run), and every bad search field is a 400 naming it."""
import pytest

from conftest import assert_problem
from datagen import churn_csv, iris_like_csv

P = "/api/v1/projects/default"


@pytest.fixture(scope="module")
def data(client):
    for name, text in (("schurn", churn_csv(rows=600)), ("sflowers", iris_like_csv(rows=300))):
        r = client.post(f"{P}/datasets?name={name}", data=text.encode(), headers={"Content-Type": "text/csv"})
        assert r.status_code == 201, r.text
    return True


def submit(client, path, body, timeout=180):
    r = client.post(f"{P}/{path}", json=body)
    assert r.status_code == 202, r.text
    job = client.wait_job(r.json()["job"], timeout=timeout)
    run = client.get(f"{P}/runs/{r.json()['run']}").json()
    return job, run


def test_tpe_search_records_trials_and_keeps_the_best_model(client, data):
    job, run = submit(client, "tune", {
        "dataset": "schurn", "target": "churned", "task": "binary", "learner": "xgboost",
        "sampler": "tpe", "max_trials": 12, "time_budget_s": 60, "metric": "roc_auc",
        "space": {"max_depth": {"type": "int", "low": 2, "high": 6},
                  "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True}},
        "experiment": "churn-search", "tags": {"owner": "ml-team"}})
    assert job["state"] == "succeeded", job
    assert run["kind"] == "tune" and run["state"] == "succeeded", run
    assert run["experiment"] == "churn-search" and run["tags"] == {"owner": "ml-team"}
    result = run["search"]["result"]
    assert result["trials"] == 12, result
    trials = client.get(f"{P}/runs/{run['id']}/trials").json()["trials"]
    assert len(trials) == 12
    assert {t["kind"] for t in trials} == {"trial"} and {t["parent"] for t in trials} == {run["id"]}
    assert {t["state"] for t in trials} <= {"succeeded", "pruned"}
    done = [t for t in trials if t["state"] == "succeeded"]
    best = max(done, key=lambda t: t["metrics"]["roc_auc"])
    assert best["search"]["number"] == result["best_trial"]
    assert abs(best["metrics"]["roc_auc"] - result["best_score"]) < 1e-12
    for t in trials:
        assert 2 <= t["params"]["max_depth"] <= 6 and 0.02 <= t["params"]["learning_rate"] <= 0.3
    # The run's params are the best trial's (rounds from early stopping), and it was evaluated like a run.
    assert run["params"]["max_depth"] == best["params"]["max_depth"]
    assert run["params"]["n_estimators"] == best["params"]["n_estimators"]
    assert run["metrics"]["cv"]["roc_auc"]["mean"] > 0.8, run["metrics"]["cv"]
    # Trials are runs: listed and filtered like any other.
    lr = client.get(f"{P}/runs?filter=kind=trial,parent={run['id']}")
    assert lr.status_code == 200, lr.text
    listed = lr.json()["runs"]
    assert len(listed) == 12
    # A plain listing leaves the trials out; ?trials=true brings them back.
    plain = client.get(f"{P}/runs?limit=1000").json()["runs"]
    assert run["id"] in {x["id"] for x in plain} and all(x["kind"] != "trial" for x in plain)
    every = client.get(f"{P}/runs?limit=1000&trials=true").json()["runs"]
    assert sum(1 for x in every if x.get("parent") == run["id"]) == 12
    assert_problem(client.get(f"{P}/runs?trials=maybe"), 400, "trials")
    # The search run registers and serves; a trial has no model.
    assert client.post(f"{P}/models/tuned/versions", json={"run": run["id"]}).status_code == 201
    assert client.post(f"{P}/deployments", json={"name": "tuned", "model": "tuned"}).status_code == 201
    p = client.post(f"{P}/deployments/tuned/predict", json={"instances": [
        {"age": 70, "income": 40000, "plan": "basic", "signup": "2024-02-02", "visits": 1}]})
    assert p.status_code == 200, p.text
    r = client.post(f"{P}/models/trial/versions", json={"run": trials[0]["id"]})
    assert r.status_code in (400, 409), r.text


def test_grid_search_runs_every_point(client, data):
    job, run = submit(client, "tune", {
        "dataset": "sflowers", "target": "species", "task": "multiclass", "sampler": "grid",
        "space": {"max_depth": [2, 4], "learning_rate": [0.1, 0.3]}, "metric": "accuracy",
        "split": {"method": "kfold", "folds": 3}})
    assert job["state"] == "succeeded", job
    trials = client.get(f"{P}/runs/{run['id']}/trials").json()["trials"]
    points = {(t["params"]["max_depth"], t["params"]["learning_rate"]) for t in trials}
    assert points == {(2, 0.1), (2, 0.3), (4, 0.1), (4, 0.3)}
    assert run["metrics"]["accuracy"] > 0.8


def test_automl_infers_the_task_blends_and_serves(client, data):
    job, run = submit(client, "automl", {"dataset": "schurn", "target": "churned", "time_budget_s": 8})
    assert job["state"] == "succeeded", job
    assert run["kind"] == "automl" and run["task"] == "binary", run
    s = run["search"]
    assert s["task_inferred"] is True and s["metric"] == "roc_auc"
    board = s["leaderboard"]
    assert board[0]["rank"] == 1 and len(board) >= 3
    assert {"random_forest", "xgboost"} <= {row["learner"] for row in board}
    for row in board:
        assert row["fit_seconds"] >= 0 and "score" in row
    assert sum(1 for row in board if row["chosen"]) == 1
    assert run["metrics"]["roc_auc"] > 0.8
    trials = client.get(f"{P}/runs/{run['id']}/trials").json()["trials"]
    assert len(trials) == s["trials"] >= 3
    assert client.post(f"{P}/models/auto/versions", json={"run": run["id"]}).status_code == 201
    assert client.post(f"{P}/deployments", json={"name": "auto", "model": "auto"}).status_code == 201
    p = client.post(f"{P}/deployments/auto/predict?explain=true", json={"instances": [
        {"age": 70, "income": 40000, "plan": "basic", "signup": "2024-02-02", "visits": 1},
        {"age": 30, "income": 60000, "plan": "pro", "signup": "2024-02-02", "visits": 25}]})
    assert p.status_code == 200, p.text
    pred = p.json()["predictions"]
    assert pred[0] > pred[1], pred


def test_a_search_can_be_cancelled(client, data):
    r = client.post(f"{P}/tune", json={"dataset": "schurn", "target": "churned", "task": "binary",
                                       "max_trials": 10000, "time_budget_s": 600})
    assert r.status_code == 202, r.text
    import time
    time.sleep(1.0)
    assert client.post(f"/api/v1/jobs/{r.json()['job']}/cancel").status_code == 200
    job = client.wait_job(r.json()["job"], timeout=60)
    assert job["state"] == "cancelled", job
    run = client.get(f"{P}/runs/{r.json()['run']}").json()
    assert run["state"] == "cancelled"


def test_bad_search_requests_name_the_field(client, data):
    base = {"dataset": "schurn", "target": "churned", "task": "binary"}

    def bad(path, extra, field):
        assert_problem(client.post(f"{P}/{path}", json={**base, **extra}), 400, field)
    bad("tune", {"space": {"max_depht": [1, 2]}}, "space.max_depht")
    bad("tune", {"space": {"max_depth": {"type": "int", "low": 9, "high": 2}}}, "space.max_depth")
    bad("tune", {"space": {"learning_rate": {"low": 0, "high": 1, "log": True}}}, "space.learning_rate")
    bad("tune", {"sampler": "bayes"}, "sampler")
    bad("tune", {"sampler": "grid", "space": {"learning_rate": {"low": 0.1, "high": 0.3}}}, "space.learning_rate")
    bad("tune", {"metric": "rmse"}, "metric")
    bad("tune", {"time_budget_s": 0}, "time_budget_s")
    bad("tune", {"max_trials": 0}, "max_trials")
    bad("tune", {"params": {"max_depth": 99}}, "params.max_depth")
    bad("tune", {"space": {}}, "space")
    bad("tune", {"tags": {"k": 5}}, "tags.k")
    bad("automl", {"time_budget_s": -1}, "time_budget_s")
    bad("automl", {"learner": "xgboost"}, "learner")
    bad("automl", {"learners": ["nope"]}, "learners")
    bad("automl", {"metric": "rmse"}, "metric")
    bad("automl", {"bogus": 1}, "bogus")
    assert_problem(client.post(f"{P}/automl", json={"dataset": "schurn", "target": "nope"}), 400, "target")
    assert client.post(f"{P}/datasets?name=stiny", data=b"a,b,y\n1,2,0\n2,3,1\n3,1,0\n",
                       headers={"Content-Type": "text/csv"}).status_code == 201
    assert_problem(client.post(f"{P}/automl", json={"dataset": "stiny", "target": "y"}), 400, "target", "10 rows")
    # Nothing half-made: no run was created by any of these.
    runs = client.get(f"{P}/runs?filter=kind=tune&limit=1000").json()["runs"]
    assert all(r["state"] != "queued" for r in runs)


def test_runs_carry_experiment_tags_and_notes(client, data):
    r = client.post(f"{P}/runs", json={"dataset": "schurn", "target": "churned", "task": "binary",
                                       "params": {"n_estimators": 5}, "experiment": "exp-a",
                                       "tags": {"team": "risk"}, "notes": "first try"})
    assert r.status_code == 202, r.text
    run_id = r.json()["run"]
    client.wait_job(r.json()["job"])
    run = client.get(f"{P}/runs/{run_id}").json()
    assert (run["experiment"], run["tags"], run["notes"]) == ("exp-a", {"team": "risk"}, "first try")
    assert run["lathe_version"] and run["kind"] == "train"
    p = client.patch(f"{P}/runs/{run_id}", json={"tags": {"team": "risk", "stage": "candidate"}, "notes": "kept"})
    assert p.status_code == 200, p.text
    again = client.get(f"{P}/runs/{run_id}").json()
    assert again["tags"] == {"team": "risk", "stage": "candidate"} and again["notes"] == "kept"
    assert again["metrics"] == run["metrics"] and again["state"] == "succeeded"  # nothing else changed
    found = client.get(f"{P}/runs?filter=experiment=exp-a,tags.stage=candidate").json()["runs"]
    assert [x["id"] for x in found] == [run_id]
    exps = {e["name"]: e for e in client.get(f"{P}/experiments").json()["experiments"]}
    assert exps["exp-a"]["runs"] == 1 and exps["exp-a"]["last_run_at"]
    assert exps["churn-search"]["runs"] == 13 and exps["churn-search"]["runs_without_trials"] == 1
    assert_problem(client.patch(f"{P}/runs/{run_id}", json={"state": "failed"}), 400, "state")
    assert_problem(client.patch(f"{P}/runs/{run_id}", json={"tags": {"k": 1}}), 400, "tags.k")
    assert_problem(client.patch(f"{P}/runs/{run_id}", json={"notes": "x" * 20001}), 400, "notes")
    assert client.patch(f"{P}/runs/run_nope", json={"notes": "x"}).status_code == 404


def test_tuning_the_linear_learner_and_a_random_forest(client, data):
    job, run = submit(client, "tune", {
        "dataset": "sflowers", "target": "species", "task": "multiclass", "learner": "linear", "sampler": "grid",
        "space": {"alpha": [0.01, 1.0, 100.0]}, "metric": "log_loss", "split": {"method": "kfold", "folds": 3}})
    assert job["state"] == "succeeded", job
    trials = client.get(f"{P}/runs/{run['id']}/trials").json()["trials"]
    assert sorted(t["params"]["alpha"] for t in trials) == [0.01, 1.0, 100.0]
    best = min(trials, key=lambda t: t["metrics"]["log_loss"])
    assert run["params"]["alpha"] == best["params"]["alpha"] and run["learner"] == "linear"
    assert best["params"]["alpha"] != 100.0  # a heavy penalty flattens well separated classes
    job, run = submit(client, "tune", {
        "dataset": "schurn", "target": "churned", "task": "binary", "learner": "random_forest", "sampler": "random",
        "max_trials": 3, "split": {"method": "kfold", "folds": 3}})
    assert job["state"] == "succeeded", job
    assert run["metrics"]["roc_auc"] > 0.8 and "learning_rate" not in run["params"]
