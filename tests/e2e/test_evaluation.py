"""Evaluation over real HTTP: k-fold, group k-fold and time-ordered splits, cross-validation metrics, learning
curves, and every bad split field answered with problem+json naming it."""
import datetime

import pytest

from conftest import assert_problem
from datagen import customer_events_csv

P = "/api/v1/projects/default"
ROWS = 600
ROUNDS = 25


@pytest.fixture(scope="module")
def events(client):
    r = client.post(f"{P}/datasets?name=events", data=customer_events_csv(rows=ROWS).encode(),
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    types = {c["name"]: c["type"] for c in r.json()["columns"]}
    assert types["day"] == "datetime" and types["customer"] == "string", types
    return "events"


def run(client, split, target="bought", task="binary", dataset="events"):
    body = {"dataset": dataset, "target": target, "task": task,
            "params": {"n_estimators": ROUNDS, "max_depth": 3}, "split": split}
    r = client.post(f"{P}/runs", json=body)
    assert r.status_code == 202, r.text
    job = client.wait_job(r.json()["job"])
    assert job["state"] == "succeeded", job
    out = client.get(f"{P}/runs/{r.json()['run']}").json()
    assert out["state"] == "succeeded", out
    return out


def check_cv(metrics, folds, names=("roc_auc", "accuracy", "log_loss", "f1")):
    cv = metrics["cv"]
    for k in names:
        entry = cv[k]
        assert len(entry["folds"]) == folds, (k, entry)
        values = entry["folds"]
        mean = sum(values) / folds
        assert abs(entry["mean"] - mean) < 1e-9, (k, entry)
        std = (sum((v - mean) ** 2 for v in values) / folds) ** 0.5
        assert abs(entry["std"] - std) < 1e-9, (k, entry)
        assert entry["std"] < 0.2, (k, entry)  # folds of one dataset agree roughly


def test_kfold_reports_cv_mean_std_and_serves_the_model_fit_on_all_rows(client, events):
    r = run(client, {"method": "kfold", "folds": 5, "seed": 3})
    assert r["split"] == {"method": "kfold", "folds": 5, "seed": 3, "stratify": True}
    m = r["metrics"]
    check_cv(m, 5)
    assert 0.7 < m["cv"]["roc_auc"]["mean"] <= 1.0, m["cv"]
    assert m["split"]["folds"] == 5 and sum(m["split"]["fold_rows"]) == ROWS, m["split"]
    assert max(m["split"]["fold_rows"]) - min(m["split"]["fold_rows"]) <= 2, m["split"]
    assert r["train_rows"] == ROWS and r["test_rows"] == ROWS  # final model on all rows; every row scored once
    assert abs(m["roc_auc"] - m["cv"]["roc_auc"]["mean"]) < 0.05, m  # pooled out-of-fold vs fold mean
    curves = r["curves"]["learning"]
    assert curves["source"] == "cv_mean" and curves["metric"] == "logloss"
    assert len(curves["train"]) == ROUNDS and len(curves["valid"]) == ROUNDS
    assert curves["valid"][-1] < curves["valid"][0]

    # The same request again gives the same evaluation (seeded folds and learner).
    again = run(client, {"method": "kfold", "folds": 5, "seed": 3})
    assert again["metrics"] == m
    other = run(client, {"method": "kfold", "folds": 5, "seed": 4})
    assert other["metrics"]["cv"] != m["cv"]

    # The kept model is usable like any other.
    assert client.post(f"{P}/models/cv/versions", json={"run": r["id"]}).status_code == 201
    assert client.post(f"{P}/deployments", json={"name": "cv", "model": "cv"}).status_code == 201
    p = client.post(f"{P}/deployments/cv/predict", json={"instances": [
        {"customer": "c01", "day": "2024-03-01", "amount": 95.0, "channel": "web"},
        {"customer": "c01", "day": "2024-03-01", "amount": 2.0, "channel": "phone"}]})
    assert p.status_code == 200, p.text
    assert len(p.json()["predictions"]) == 2


def test_group_kfold_keeps_customers_apart(client, events):
    r = run(client, {"method": "group_kfold", "group_column": "customer", "folds": 4})
    m = r["metrics"]
    assert r["split"] == {"method": "group_kfold", "group_column": "customer", "folds": 4, "seed": 42}
    assert m["split"]["groups"] == 40, m["split"]
    assert sum(m["split"]["fold_rows"]) == ROWS
    check_cv(m, 4)
    # Unseen customers are harder than seen ones: the grouped estimate is not better than plain k-fold's.
    plain = run(client, {"method": "kfold", "folds": 4})
    assert m["cv"]["roc_auc"]["mean"] <= plain["metrics"]["cv"]["roc_auc"]["mean"] + 0.01, (m["cv"], plain["metrics"]["cv"])


def test_time_split_trains_on_the_earlier_rows(client, events):
    r = run(client, {"method": "time", "time_column": "day", "test_fraction": 0.25})
    m = r["metrics"]
    assert r["test_rows"] == 150 and r["train_rows"] == 450, (r["train_rows"], r["test_rows"])
    # Three rows per day from 2024-01-01: the last 150 rows are days 150..199.
    first_test_day = datetime.date(2024, 1, 1) + datetime.timedelta(days=150)
    assert m["split"]["test_time_min"].startswith(first_test_day.isoformat()), m["split"]
    assert m["split"]["train_time_max"].startswith((first_test_day - datetime.timedelta(days=1)).isoformat())
    assert m["split"]["train_time_max"] < m["split"]["test_time_min"]
    assert "cv" not in m
    assert 0.6 < m["roc_auc"] <= 1.0, m
    assert len(r["curves"]["learning"]["valid"]) == ROUNDS and r["curves"]["learning"]["source"] == "holdout"


def test_holdout_keeps_its_behaviour(client, events):
    r = run(client, {"test_fraction": 0.2, "seed": 5})
    assert r["split"] == {"method": "holdout", "test_fraction": 0.2, "seed": 5, "stratify": True}
    assert r["test_rows"] == 120 and r["train_rows"] == 480
    assert "cv" not in r["metrics"]
    assert len(r["curves"]["learning"]["train"]) == ROUNDS


@pytest.mark.parametrize("split,field", [
    ([1, 2], "split"),
    ({"method": "leave_one_out"}, "split.method"),
    ({"method": "kfold", "folds": "5"}, "split.folds"),
    ({"method": "kfold", "folds": 2.5}, "split.folds"),
    ({"method": "kfold", "folds": 1}, "split.folds"),
    ({"method": "kfold", "folds": 500}, "split.folds"),
    ({"method": "kfold", "test_fraction": 0.3}, "split.test_fraction"),
    ({"test_fraction": "0.2"}, "split.test_fraction"),
    ({"test_fraction": 0}, "split.test_fraction"),
    ({"method": "group_kfold"}, "split.group_column"),
    ({"method": "group_kfold", "group_column": 3}, "split.group_column"),
    ({"method": "group_kfold", "group_column": "no_such_column"}, "split.group_column"),
    ({"method": "group_kfold", "group_column": "bought"}, "split.group_column"),
    ({"method": "group_kfold", "group_column": "channel", "folds": 5}, "split.folds"),  # 3 channels
    ({"method": "time"}, "split.time_column"),
    ({"method": "time", "time_column": "amount"}, "split.time_column"),
    ({"method": "time", "time_column": "channel"}, "split.time_column"),
    ({"method": "time", "time_column": "no_such_column"}, "split.time_column"),
    ({"seed": -3}, "split.seed"),
    ({"seed": "7"}, "split.seed"),
    ({"stratify": "yes"}, "split.stratify"),
    ({"shuffle": True}, "split.shuffle"),
])
def test_bad_split_fields_are_named(client, events, split, field):
    before = len(client.get(f"{P}/runs").json()["runs"])
    r = client.post(f"{P}/runs", json={"dataset": "events", "target": "bought", "task": "binary", "split": split})
    problem = assert_problem(r, 400, field)
    assert problem["errors"][0]["field"] == field, problem
    assert len(client.get(f"{P}/runs").json()["runs"]) == before  # nothing half-made


def test_more_folds_than_rows_is_refused(client):
    text = "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(8))
    assert client.post(f"{P}/datasets?name=tiny", data=text.encode(),
                       headers={"Content-Type": "text/csv"}).status_code == 201
    r = client.post(f"{P}/runs", json={"dataset": "tiny", "target": "y", "task": "binary",
                                       "split": {"method": "kfold", "folds": 10}})
    problem = assert_problem(r, 400, "split.folds")
    assert problem["errors"][0]["field"] == "split.folds"
