"""The learner registry over real HTTP: every XGBoost learner (boosted trees, DART, random forest) trains,
registers, deploys and explains; regression objectives and row weights are params; anything outside a
learner's schema is a 400 naming the param."""
import random

import pytest

from conftest import assert_problem
from datagen import churn_csv

P = "/api/v1/projects/default"


def counts_csv(rows=500, seed=9):
    """Poisson counts whose log-rate is linear in x (a log-link objective's home ground), with a weight."""
    import math
    rnd = random.Random(seed)
    lines = ["x,zone,w,visits"]
    for _ in range(rows):
        x = rnd.uniform(0, 3)
        zone = rnd.choice(["n", "s"])
        lam = math.exp(0.3 + 0.8 * x + (0.5 if zone == "n" else 0))
        # Knuth's Poisson sampler
        k, p, limit = 0, 1.0, math.exp(-lam)
        while True:
            p *= rnd.random()
            if p <= limit:
                break
            k += 1
        lines.append(f"{x:.3f},{zone},{rnd.choice([1, 2])},{k}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def data(client):
    for name, text in (("lchurn", churn_csv(rows=500)), ("visits", counts_csv())):
        r = client.post(f"{P}/datasets?name={name}", data=text.encode(), headers={"Content-Type": "text/csv"})
        assert r.status_code == 201, r.text
    return True


def test_learners_are_listed_with_their_schemas(client):
    learners = {l["name"]: l for l in client.get("/api/v1/learners").json()["learners"]}
    assert {"xgboost", "xgboost_dart", "random_forest"} <= set(learners)
    dart = {p["name"]: p for p in learners["xgboost_dart"]["params"]}
    assert dart["rate_drop"]["type"] == "number" and dart["rate_drop"]["max"] == 1
    rf = {p["name"]: p for p in learners["random_forest"]["params"]}
    assert "learning_rate" not in rf and rf["subsample"]["default"] == 0.8
    obj = {p["name"]: p for p in learners["xgboost"]["params"]}["objective"]
    assert obj["tasks"] == ["regression"] and "poisson" in obj["enum"]


@pytest.mark.parametrize("learner,params", [
    ("xgboost_dart", {"n_estimators": 20, "rate_drop": 0.1}),
    ("random_forest", {"n_estimators": 40, "max_depth": 6}),
])
def test_each_learner_trains_deploys_and_explains(client, data, learner, params):
    run = client.train({"dataset": "lchurn", "target": "churned", "task": "binary", "learner": learner,
                         "params": params})
    assert run["learner"] == learner
    assert run["metrics"]["roc_auc"] > 0.75, run["metrics"]
    assert run["params"]["max_depth"] == params.get("max_depth", 6)
    model = f"m_{learner}"
    assert client.post(f"{P}/models/{model}/versions", json={"run": run["id"]}).status_code == 201
    assert client.post(f"{P}/deployments", json={"name": model, "model": model}).status_code == 201
    inst = [{"age": 70, "income": 40000, "plan": "basic", "signup": "2024-02-02", "visits": 1},
            {"age": 30, "income": 60000, "plan": "pro", "signup": "2024-02-02", "visits": 25}]
    r = client.post(f"{P}/deployments/{model}/predict?explain=true", json={"instances": inst})
    assert r.status_code == 200, r.text
    out = r.json()
    p = out["predictions"]
    assert 0 <= p[1] < p[0] <= 1, p  # few visits, basic plan, older: the likelier churner
    assert len(out["explanations"]) == 2


def test_poisson_objective_and_weight_column(client, data):
    base = {"dataset": "visits", "target": "visits", "task": "regression", "params": {"n_estimators": 60}}
    sq = client.train(base)
    po = client.train({**base, "params": {"n_estimators": 60, "objective": "poisson"}})
    assert po["params"]["objective"] == "poisson"
    assert po["metrics"]["r2"] > 0.5, po["metrics"]
    weighted = client.train({**base, "params": {"n_estimators": 60, "weight_column": "w"}})
    assert "w" not in [i["name"] for i in weighted["signature"]["inputs"]]
    assert weighted["metrics"] != sq["metrics"]


def test_params_outside_the_schema_are_400_naming_them(client, data):
    def bad(body, field):
        r = client.post(f"{P}/runs", json={"dataset": "lchurn", "target": "churned", "task": "binary", **body})
        assert_problem(r, 400, field)
    bad({"params": {"rate_drop": 0.1}}, "params.rate_drop")  # DART only
    bad({"learner": "random_forest", "params": {"learning_rate": 0.1}}, "params.learning_rate")
    bad({"learner": "xgboost_dart", "params": {"rate_drop": 1.5}}, "params.rate_drop")
    bad({"params": {"objective": "poisson"}}, "params.objective")  # regression only
    bad({"params": {"class_weight": "heavy"}}, "params.class_weight")
    bad({"params": {"weight_column": "nope"}}, "params.weight_column")
    bad({"params": {"weight_column": "plan"}}, "params.weight_column")
    bad({"params": {"weight_column": "churned"}}, "params.weight_column")
    r = client.post(f"{P}/runs", json={"dataset": "visits", "target": "x", "task": "regression",
                                       "params": {"objective": "tweedie", "tweedie_variance_power": 2}})
    assert_problem(r, 400, "params.tweedie_variance_power")
