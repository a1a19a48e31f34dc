"""ONNX export over real HTTP, checked in ONNX Runtime (npm's onnxruntime-node, run by tests/onnx/run.js):
each learner and task is trained, deployed and exported, and the ONNX model must give lathe's predictions
within 1e-5 on rows with missing values, unseen categories, dates before 1970 and every feature type."""
import calendar
import datetime
import json
import math
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import LATHE_BIN, assert_problem

P = "/api/v1/projects/default"
ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "onnx" / "run.js"

COLORS = ["red", "green", "blue", "amber", "teal", "plum", "gold", "gray", "navy", "rose", "sand", "lime"]
EFFECT = {c: (i * 7 % 5) - 2 for i, c in enumerate(COLORS)}


def mixed_rows(n, seed):
    """Rows with every feature type: integer, float (some missing), boolean, a 12-level category (native
    categorical splits; some missing), a timestamp from 1950 to 2040, plus three targets."""
    rnd = random.Random(seed)
    rows = []
    start = datetime.datetime(1950, 1, 1)
    for _ in range(n):
        age = rnd.randint(18, 90)
        income = None if rnd.random() < 0.1 else round(rnd.gauss(50, 15), 3)
        member = rnd.random() < 0.4
        color = None if rnd.random() < 0.05 else rnd.choice(COLORS)
        when = start + datetime.timedelta(seconds=rnd.randrange(0, 90 * 365 * 86400))
        score = (EFFECT.get(color, 0) + (age - 50) / 20 + (1.0 if member else 0) + ((income or 50) - 50) / 15 +
                 (0.8 if when.month in (6, 7, 8) else 0) + rnd.gauss(0, 0.5))
        rows.append({"age": age, "income": income, "member": member, "color": color,
                     "when": when.strftime("%Y-%m-%dT%H:%M:%S"),
                     "churn": "stayed" if score > 0.5 else "left",
                     "tier": "gold" if score > 1.5 else ("silver" if score > -0.5 else "bronze"),
                     "visits": max(0, int(math.exp(0.3 * score + 1) + rnd.random() * 2))})
    return rows


def to_csv(rows):
    cols = list(rows[0])
    out = [",".join(cols)]
    for r in rows:
        out.append(",".join("" if r[c] is None else str(r[c]).lower() if isinstance(r[c], bool) else str(r[c])
                            for c in cols))
    return "\n".join(out) + "\n"


def onnx_feeds(rows):
    """The rows as ONNX inputs: numbers and booleans as doubles, strings as strings ("" = missing), dates as
    epoch seconds."""
    def secs(text):
        if text is None:
            return None
        return calendar.timegm(datetime.datetime.fromisoformat(text).timetuple())
    return {
        "age": {"type": "float64", "data": [r["age"] for r in rows]},
        "income": {"type": "float64", "data": [r["income"] for r in rows]},
        "member": {"type": "float64", "data": [None if r["member"] is None else float(r["member"]) for r in rows]},
        "color": {"type": "string", "data": [r["color"] or "" for r in rows]},
        "when": {"type": "float64", "data": [secs(r["when"]) for r in rows]},
    }


def run_onnx(path, feeds):
    r = subprocess.run(["node", str(RUNNER), str(path)], input=json.dumps(feeds), capture_output=True, text=True,
                       timeout=120, cwd=RUNNER.parent)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def data(client):
    if shutil.which("node") is None or not (RUNNER.parent / "node_modules" / "onnxruntime-node").is_dir():
        pytest.fail("ONNX Runtime is missing: run scripts/install-deps (it installs tests/onnx's npm packages)")
    rows = mixed_rows(600, seed=21)
    for target in ("churn", "tier", "visits"):
        drop = {"churn", "tier", "visits"} - {target}
        body = to_csv([{k: v for k, v in r.items() if k not in drop} for r in rows])
        r = client.post(f"{P}/datasets?name=onnx_{target}", data=body.encode(), headers={"Content-Type": "text/csv"})
        assert r.status_code == 201, r.text
    # Scoring rows: training-like rows plus the edges: every value missing, a category never seen, a date
    # before 1970 on a day boundary, large numbers.
    probe = mixed_rows(150, seed=99)
    probe += [{"age": None, "income": None, "member": None, "color": None, "when": None},
              {"age": 40, "income": 1e12, "member": True, "color": "violet", "when": "1969-12-31T23:59:59"},
              {"age": -5, "income": -3.5, "member": False, "color": "teal", "when": "2000-02-29T00:00:00"},
              {"age": 1 << 40, "income": 0.0, "member": True, "color": "red", "when": "1960-03-01T00:00:00"}]
    return [{k: r[k] for k in ("age", "income", "member", "color", "when")} for r in probe]


def train_and_export(client, tmp_path, model, target, task, learner, params):
    body = {"dataset": f"onnx_{target}", "target": target, "task": task, "learner": learner, "params": params}
    r = client.post(f"{P}/runs", json=body)
    assert r.status_code == 202, r.text
    assert client.wait_job(r.json()["job"])["state"] == "succeeded"
    r = client.post(f"{P}/models/{model}/versions", json={"run": r.json()["run"]})
    assert r.status_code == 201, r.text
    version = r.json()["version"]
    r = client.get(f"{P}/models/{model}/versions/{version}/onnx")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert f'filename="{model}-v{version}.onnx"' in r.headers["Content-Disposition"]
    path = tmp_path / f"{model}.onnx"
    path.write_bytes(r.content)
    r = client.post(f"{P}/deployments", json={"name": model, "model": model, "version": version})
    assert r.status_code in (200, 201), r.text
    return path


CASES = [
    ("xgb_binary", "churn", "binary", "xgboost", {"n_estimators": 40, "max_depth": 4}),
    ("xgb_multi", "tier", "multiclass", "xgboost", {"n_estimators": 30, "max_depth": 3}),
    ("xgb_poisson", "visits", "regression", "xgboost", {"n_estimators": 40, "objective": "poisson"}),
    ("xgb_reg", "visits", "regression", "xgboost", {"n_estimators": 40, "max_depth": 5}),
    ("rf_multi", "tier", "multiclass", "random_forest", {"n_estimators": 20}),
    ("dart_binary", "churn", "binary", "xgboost_dart", {"n_estimators": 20, "rate_drop": 0.2}),
    ("lin_binary", "churn", "binary", "linear", {"alpha": 0.5}),
    ("lin_multi", "tier", "multiclass", "linear", {}),
    ("lin_reg", "visits", "regression", "linear", {"alpha": 2.0}),
    ("gblinear_binary", "churn", "binary", "xgboost_linear", {"n_estimators": 30, "reg_lambda": 0.1}),
    ("gblinear_multi", "tier", "multiclass", "xgboost_linear", {"n_estimators": 20}),
    ("gblinear_reg", "visits", "regression", "xgboost_linear", {"reg_alpha": 0.5}),
]


@pytest.mark.parametrize("model,target,task,learner,params", CASES, ids=[c[0] for c in CASES])
def test_onnx_matches_lathe(client, data, tmp_path, model, target, task, learner, params):
    path = train_and_export(client, tmp_path, model, target, task, learner, params)
    r = client.post(f"{P}/deployments/{model}/predict", json={"instances": data})
    assert r.status_code == 200, r.text
    expected = r.json()["predictions"]
    if learner == "xgboost" and task != "regression":
        assert b"BRANCH_EQ" in path.read_bytes()  # the color splits are native categorical ones
    got = run_onnx(path, onnx_feeds(data))
    assert got["inputs"] == ["age", "income", "member", "color", "when"]
    out = got["outputs"]
    n = len(data)
    if task == "regression":
        assert out["prediction"]["dims"] == [n, 1]
        for i, (e, g) in enumerate(zip(expected, out["prediction"]["data"])):
            assert abs(e - g) <= 1e-5 * max(1.0, abs(e)), (i, data[i], e, g)
        return
    probs = out["probabilities"]["data"]
    if task == "binary":
        assert out["probabilities"]["dims"] == [n, 2]
        for i, e in enumerate(expected):
            assert abs(probs[2 * i + 1] - e) <= 1e-5 and abs(probs[2 * i] - (1 - e)) <= 1e-5, (i, data[i], e)
            assert out["label"]["data"][i] == ("stayed" if probs[2 * i + 1] > probs[2 * i] else "left")
        return
    classes = ["bronze", "gold", "silver"]
    assert out["probabilities"]["dims"] == [n, 3]
    for i, e in enumerate(expected):
        row = probs[3 * i: 3 * i + 3]
        for c, name in enumerate(classes):
            assert abs(row[c] - e["probabilities"][name]) <= 1e-5, (i, data[i], name)
        assert out["label"]["data"][i] == classes[row.index(max(row))]


def test_nested_categorical_splits_route_missing_values(client, tmp_path):
    """Two categorical splits on one column, the inner one sending missing values to its in-set side, with equal
    leaves: ONNX Runtime merges such equality chains into one set test that keeps only the first node's
    missing flag, so the exporter must route missing values before the chain (a bug seen in AutoML blends)."""
    import base64
    import numpy as np
    import xgboost as xgb
    x = np.random.RandomState(0).randint(0, 12, size=(200, 1)).astype(np.float32)
    d = xgb.DMatrix(x, label=(x[:, 0] % 3), feature_types=["c"], enable_categorical=True)
    booster = xgb.train({"tree_method": "hist", "max_depth": 2, "max_cat_to_onehot": 1, "base_score": 0.5}, d, 1)
    model = json.loads(booster.save_raw("json"))
    tree = model["learner"]["gradient_booster"]["model"]["trees"][0]
    assert tree["left_children"] == [1, 3, -1, -1, -1] and tree["split_type"][:2] == [1, 1]
    # color in {0..3} -> right leaf 0.0; else {10, 11} (missing too) -> right leaf 0.0; else 0.5.
    tree.update(categories=[0, 1, 2, 3, 10, 11], categories_segments=[0, 4], categories_sizes=[4, 2],
                default_left=[1, 0, 0, 0, 0], split_conditions=[0.0, 0.0, 0.0, 0.5, 0.0],
                base_weights=[0.0, 0.0, 0.0, 0.5, 0.0])
    edited = xgb.Booster()
    edited.load_model(bytearray(json.dumps(model).encode()))
    colors = [f"c{i}" for i in range(12)]
    signature = {"task": "regression", "target": "y", "inputs": [{"name": "color", "type": "string",
                                                                   "categories": colors}]}
    r = client.post(f"{P}/models/nested/import", json={"model_base64": base64.b64encode(edited.save_raw("ubj")).decode(),
                                                       "signature": signature})
    assert r.status_code == 201, r.text
    assert client.post(f"{P}/deployments", json={"name": "nested", "model": "nested"}).status_code in (200, 201)
    values = [None, "c0", "c3", "c5", "c10", "c11", "unseen"]
    want = client.post(f"{P}/deployments/nested/predict",
                       json={"instances": [{"color": v} for v in values]}).json()["predictions"]
    assert want == [0.5, 0.5, 0.5, 1.0, 0.5, 0.5, 0.5]  # base 0.5 + leaf; unseen is missing
    path = tmp_path / "nested.onnx"
    path.write_bytes(client.get(f"{P}/models/nested/versions/1/onnx").content)
    got = run_onnx(path, {"color": {"type": "string", "data": [v or "" for v in values]}})["outputs"]
    assert got["prediction"]["data"] == want


def test_onnx_of_an_automl_blend(client, data, tmp_path):
    """AutoML's result may be a blend: trees of several learners merged into one model plus a linear part."""
    r = client.post(f"{P}/automl", json={"dataset": "onnx_churn", "target": "churn", "time_budget_s": 8})
    assert r.status_code == 202, r.text
    assert client.wait_job(r.json()["job"], timeout=120)["state"] == "succeeded"
    r = client.post(f"{P}/models/auto/versions", json={"run": r.json()["run"]})
    assert r.status_code == 201, r.text
    onnx = client.get(f"{P}/models/auto/versions/1/onnx")
    assert onnx.status_code == 200, onnx.text
    path = tmp_path / "auto.onnx"
    path.write_bytes(onnx.content)
    assert client.post(f"{P}/deployments", json={"name": "auto", "model": "auto", "version": 1}).status_code in (200, 201)
    expected = client.post(f"{P}/deployments/auto/predict", json={"instances": data}).json()["predictions"]
    probs = run_onnx(path, onnx_feeds(data))["outputs"]["probabilities"]["data"]
    for i, e in enumerate(expected):
        assert abs(probs[2 * i + 1] - e) <= 1e-5, (i, e)


def test_export_errors_and_the_cli(client, data, tmp_path):
    train_and_export(client, tmp_path, "cli_model", "visits", "regression", "xgboost", {"n_estimators": 5})
    assert client.get(f"{P}/models/cli_model/versions/99/onnx").status_code == 404
    assert client.get(f"{P}/models/nosuch/versions/1/onnx").status_code == 404
    assert_problem(client.get(f"{P}/models/cli_model/versions/one/onnx"), 400, "version")
    # A model trained on a recipe's output replays the recipe on its input: ONNX cannot, so it is a 409.
    r = client.post(f"{P}/recipes", json={"name": "onnx_scale", "steps": [
        {"op": "scale_zscore", "params": {"columns": ["age"]}}]})
    assert r.status_code == 201, r.text
    r = client.post(f"{P}/datasets/onnx_churn/versions/1/apply?wait=true",
                    json={"recipe": "onnx_scale", "output": "onnx_scaled"})
    assert r.status_code == 201, r.text
    r = client.post(f"{P}/runs", json={"dataset": "onnx_scaled", "target": "churn", "task": "binary",
                                       "params": {"n_estimators": 5}})
    assert r.status_code == 202, r.text
    assert client.wait_job(r.json()["job"])["state"] == "succeeded"
    assert client.post(f"{P}/models/recipe_model/versions", json={"run": r.json()["run"]}).status_code == 201
    assert_problem(client.get(f"{P}/models/recipe_model/versions/1/onnx"), 409, "recipe")
    # The CLI writes the same bytes the API returns.
    out = tmp_path / "cli.onnx"
    env = {k: v for k, v in os.environ.items() if k not in ("LATHE_PASSWORD", "XDG_CONFIG_HOME")}
    env.update(HOME=str(tmp_path), LATHE_URL=client.url, LATHE_TOKEN=client.s.headers["Authorization"].split()[1])
    r = subprocess.run([LATHE_BIN, "models", "export", "cli_model", "1", "-o", str(out)], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == client.get(f"{P}/models/cli_model/versions/1/onnx").content
    assert "Exported cli_model v1 as onnx" in r.stdout
    r = subprocess.run([LATHE_BIN, "models", "export", "cli_model", "1", "--format", "pmml"], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 2 and "--format must be onnx or bundle" in r.stderr
