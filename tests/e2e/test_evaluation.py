"""Evaluation over real HTTP: k-fold, group k-fold and time-ordered splits, cross-validation metrics, learning
curves, and every bad split field answered with problem+json naming it."""
import datetime

import pytest

from conftest import assert_problem
from datagen import customer_events_csv, iris_like_csv, regression_csv

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


def run(client, split, target="bought", task="binary", dataset="events", max_depth=3):
    body = {"dataset": dataset, "target": target, "task": task,
            "params": {"n_estimators": ROUNDS, "max_depth": max_depth}, "split": split}
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


def test_runs_list_filters_and_sorts_by_metric_and_param(client, events):
    shallow = run(client, {"seed": 11}, max_depth=1)
    deep = run(client, {"seed": 11}, max_depth=5)

    def listed(**query):
        r = client.get(f"{P}/runs", params=query)
        assert r.status_code == 200, r.text
        return r.json()["runs"]

    best_first = listed(sort="metrics.roc_auc", order="desc", filter="dataset=events,state=succeeded")
    aucs = [x["metrics"]["roc_auc"] for x in best_first]
    assert len(aucs) >= 8 and aucs == sorted(aucs, reverse=True), aucs
    worst_first = listed(sort="metrics.roc_auc", order="asc", filter="dataset=events")
    assert [x["metrics"]["roc_auc"] for x in worst_first] == sorted(aucs)
    assert listed(sort="metrics.roc_auc", limit=1)[0]["id"] == best_first[0]["id"]

    by_depth = listed(filter="params.max_depth=1")
    assert [x["id"] for x in by_depth] == [shallow["id"]]
    both = {x["id"] for x in listed(filter="params.max_depth>=1,params.max_depth<=5,split.seed=11")}
    assert both == {shallow["id"], deep["id"]}
    cv_only = listed(filter="metrics.cv.roc_auc.mean>0")
    assert cv_only and all(x["split"]["method"] in ("kfold", "group_kfold") for x in cv_only)
    threshold = aucs[2]
    assert all(x["metrics"]["roc_auc"] > threshold for x in listed(filter=f"metrics.roc_auc>{threshold}"))

    for query, field in [({"sort": "password"}, "sort"), ({"sort": "metrics..auc"}, "sort"),
                         ({"sort": "metrics.roc_auc", "order": "up"}, "order"),
                         ({"filter": "metrics.roc_auc"}, "filter"), ({"filter": "secrets>1"}, "filter"),
                         ({"limit": "0"}, "limit")]:
        problem = assert_problem(client.get(f"{P}/runs", params=query), 400, field)
        assert problem["errors"][0]["field"] == field, problem


def test_compare_runs_side_by_side(client, events):
    a = run(client, {"seed": 12}, max_depth=2)
    b = run(client, {"method": "kfold", "folds": 3, "seed": 12}, max_depth=4)
    r = client.get(f"{P}/runs/compare", params={"ids": f"{a['id']},{b['id']}"})
    assert r.status_code == 200, r.text
    c = r.json()
    assert [x["id"] for x in c["runs"]] == [a["id"], b["id"]]
    assert c["runs"][1]["split"]["method"] == "kfold"
    assert c["params"]["max_depth"] == [2, 4]
    assert c["differing_params"] == ["max_depth"]
    assert c["metrics"]["roc_auc"] == [a["metrics"]["roc_auc"], b["metrics"]["roc_auc"]]
    assert c["metrics"]["cv.roc_auc.mean"] == [None, b["metrics"]["cv"]["roc_auc"]["mean"]]

    for ids, status in [(None, 400), (a["id"], 400), (f"{a['id']},{a['id']}", 400), (f"{a['id']},", 400),
                        (f"{a['id']},run_nope", 404), (",".join([a["id"]] * 11), 400)]:
        problem = assert_problem(client.get(f"{P}/runs/compare", params={"ids": ids} if ids else {}), status, "ids")
        assert problem["errors"][0]["field"] == "ids", problem


def test_binary_run_carries_charts(client, events):
    r = run(client, {"seed": 13})
    curves = r["curves"]
    roc, pr = curves["roc_curve"], curves["pr_curve"]
    assert roc["fpr"][0] == 0 and roc["fpr"][-1] == 1 and roc["tpr"][-1] == 1
    assert len(roc["fpr"]) <= 200 and len(pr["recall"]) <= 200
    assert sum(curves["calibration"]["count"]) == r["test_rows"]
    assert curves["lift"]["gain"][-1] == 1.0 and curves["lift"]["lift"][0] >= 1.0
    m = r["metrics"]
    assert sum(map(sum, m["confusion_matrix"])) == r["test_rows"]
    for k in ("balanced_accuracy", "pr_auc"):
        assert 0 <= m[k] <= 1, m
    # The list stays small: charts only in the single-run view.
    listed = client.get(f"{P}/runs", params={"filter": f"id={r['id']}"}).json()["runs"]
    assert len(listed) == 1 and "curves" not in listed[0]


def test_regression_and_multiclass_cross_validation(client):
    for name, text in (("prices", regression_csv(rows=300)), ("flowers", iris_like_csv(rows=300))):
        r = client.post(f"{P}/datasets?name={name}", data=text.encode(), headers={"Content-Type": "text/csv"})
        assert r.status_code == 201, r.text
    reg = run(client, {"method": "kfold", "folds": 4}, target="price", task="regression", dataset="prices")
    m = reg["metrics"]
    check_cv(m, 4, names=("rmse", "mae", "r2"))
    assert m["cv"]["r2"]["mean"] > 0.8, m["cv"]
    assert m["mape_rows"] <= 300 and m["mape"] >= 0
    res = reg["curves"]["residuals"]
    assert res["quantiles"]["min"] <= res["quantiles"]["p50"] <= res["quantiles"]["max"]
    assert sum(res["histogram"]["counts"]) == 300 and len(res["histogram"]["edges"]) == 21
    assert reg["curves"]["learning"]["metric"] == "rmse"

    mc = run(client, {"method": "kfold", "folds": 3}, target="species", task="multiclass", dataset="flowers")
    m = mc["metrics"]
    check_cv(m, 3, names=("accuracy", "macro_f1", "roc_auc", "log_loss"))
    assert m["cv"]["accuracy"]["mean"] > 0.8, m["cv"]
    assert len(m["confusion_matrix"]) == 3 and sum(map(sum, m["confusion_matrix"])) == 300
    assert abs(m["micro_f1"] - m["accuracy"]) < 1e-12


def test_missing_group_values_form_one_more_group(client):
    lines = ["g,x,y"]
    for i in range(80):
        g = "abc"[i % 4] if i % 4 < 3 else ""
        lines.append(f"{g},{i % 17},{(i // 2) % 2}")
    assert client.post(f"{P}/datasets?name=grouped", data=("\n".join(lines) + "\n").encode(),
                       headers={"Content-Type": "text/csv"}).status_code == 201
    r = run(client, {"method": "group_kfold", "group_column": "g", "folds": 4}, target="y", dataset="grouped")
    assert r["metrics"]["split"]["groups"] == 4 and r["metrics"]["split"]["fold_rows"] == [20, 20, 20, 20]
    bad = client.post(f"{P}/runs", json={"dataset": "grouped", "target": "y", "task": "binary",
                                         "split": {"method": "group_kfold", "group_column": "g", "folds": 5}})
    problem = assert_problem(bad, 400, "split.folds", "(4)")
    assert problem["errors"][0]["field"] == "split.folds"


def test_runs_explain_their_model_and_give_partial_dependence(client, events):
    r = run(client, {"seed": 21})
    ex = r["explanations"]
    assert ex["source"] == "holdout" and ex["rows"] == r["test_rows"]
    assert set(ex["columns"]) == {"customer", "day", "amount", "channel"}
    assert abs(sum(ex["gain"].values()) - 1) < 1e-9
    inc = ex["permutation"]["increase"]
    # bought depends on amount most, then the customer and the channel; the day plays no part.
    assert max(inc, key=lambda c: inc[c]["mean"]) == "amount", inc
    assert inc["amount"]["mean"] > 0.05 and inc["amount"]["mean"] > 3 * abs(inc["day"]["mean"]), inc
    assert max(ex["shap"], key=ex["shap"].get) == "amount", ex["shap"]
    beeswarm = ex["shap_summary"]["channel"]
    assert len(beeswarm["values"]) == len(beeswarm["shap"]) == min(200, r["test_rows"])
    assert set(beeswarm["values"]) <= {"web", "store", "phone", None}

    pd = client.post(f"{P}/runs/{r['id']}/partial-dependence",
                     json={"columns": ["amount", "channel", "day"], "grid": 10, "rows": 300})
    assert pd.status_code == 200, pd.text
    amount, channel, day = pd.json()["items"]
    assert pd.json()["rows"] == 300
    assert amount["kind"] == "numeric" and 5 <= len(amount["values"]) <= 10
    assert amount["values"] == sorted(amount["values"]) and amount["mean"][-1] > amount["mean"][0] + 0.3, amount
    assert channel["kind"] == "categorical" and set(channel["values"]) == {"web", "store", "phone"}
    web = channel["mean"][channel["values"].index("web")]
    assert web == max(channel["mean"]), channel
    assert day["kind"] == "datetime" and day["values"][0].startswith("2024-")
    assert_problem(client.post(f"{P}/runs/{r['id']}/partial-dependence", json={"columns": ["nope"]}), 400, "nope")
    assert_problem(client.post(f"{P}/runs/{r['id']}/partial-dependence", json={"columns": []}), 400, "columns")
    assert_problem(client.post(f"{P}/runs/{r['id']}/partial-dependence", json={"columns": ["amount"], "grid": 1}),
                   400, "grid")
    assert_problem(client.post(f"{P}/runs/no-such-run/partial-dependence", json={"columns": ["amount"]}), 404)
