"""Serving over real HTTP: every protocol (native, MLflow /invocations, KServe v2), validation against the
signature, SHAP explanations, canary split and sticky routing, shadow isolation, swaps under load, automatic
rollback, the prediction log with feedback metrics, per-deployment OpenAPI, stats, events and /metrics.

LATHE_SOAK=1 makes the swap-under-load test the full 60-second run with a swap every 5 s."""
import glob
import json
import math
import os
import re
import sqlite3
import threading
import time

import pytest
import requests

from conftest import Client, Server, assert_problem, login
from datagen import churn_csv, iris_like_csv
from test_slice import import_csv, train

P = "/api/v1/projects/default"
INST = [{"age": 70, "income": 40000.0, "plan": "basic", "signup": "2024-03-01", "visits": 1},
        {"age": 25, "income": None, "plan": "team", "signup": "2024-05-11", "visits": 29}]


def churn_wide_csv():
    """churn_csv with one more feature, 'region': a model trained on it needs a field older clients do not send."""
    lines = churn_csv().splitlines()
    out = [lines[0].replace(",churned", ",region,churned")]
    for i, line in enumerate(lines[1:]):
        head, label = line.rsplit(",", 1)
        out.append(f"{head},{'north' if i % 2 else 'south'},{label}")
    return "\n".join(out) + "\n"


def register(client, model, run):
    r = client.post(f"{P}/models/{model}/versions", json={"run": run["id"]})
    assert r.status_code == 201, r.text
    return r.json()["version"]


def deploy(client, name, **body):
    r = client.post(f"{P}/deployments", json={"name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()


def predict(client, name, instances=INST, **kw):
    return client.post(f"{P}/deployments/{name}/predict", json={"instances": instances}, **kw)


@pytest.fixture(scope="module")
def models(client):
    """churn v1 (30 trees), v2 (10 shallow trees), v3 (needs 'region'); iris v1 (three float features)."""
    import_csv(client, "churn", churn_csv())
    import_csv(client, "churn-wide", churn_wide_csv())
    import_csv(client, "iris", iris_like_csv())
    runs = [train(client, "churn", "churned", "binary")[1],
            train(client, "churn", "churned", "binary", params={"n_estimators": 10, "max_depth": 2})[1],
            train(client, "churn-wide", "churned", "binary")[1]]
    assert [register(client, "churn", r) for r in runs] == [1, 2, 3]
    assert register(client, "iris", train(client, "iris", "species", "multiclass")[1]) == 1
    deploy(client, "svc", model="churn", version=1)
    return runs


def test_native_body_shapes_agree_and_name_the_version(client, models):
    r = predict(client, "svc")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == "churn" and out["version"] == 1 and out["deployment"] == "svc"
    assert r.headers["X-Lathe-Model-Version"] == "churn:1"
    p = out["predictions"]
    assert len(p) == 2 and p[0] > p[1]
    cols = list(INST[0])
    split = {"columns": cols, "data": [[i[c] for c in cols] for i in INST]}
    assert client.post(f"{P}/deployments/svc/predict", json=split).json()["predictions"] == p
    assert client.post(f"{P}/deployments/svc/predict", json={"dataframe_split": split}).json()["predictions"] == p


def test_mlflow_invocations_accepts_every_scoring_server_format(client, models):
    expected = predict(client, "svc").json()["predictions"]
    cols = list(INST[0])
    bodies = [{"dataframe_split": {"columns": cols, "data": [[i[c] for c in cols] for i in INST]}},
              {"dataframe_records": INST},
              {"instances": INST},
              {"inputs": INST},
              {"inputs": {c: [i[c] for i in INST] for c in cols}}]
    for body in bodies:
        r = client.post(f"{P}/deployments/svc/invocations", json=body)
        assert r.status_code == 200, (body, r.text)
        assert r.json() == {"predictions": expected}, body
    assert_problem(client.post(f"{P}/deployments/svc/invocations", json={"instances": INST, "inputs": INST}), 400,
                   "only one", "instances", "inputs")
    assert_problem(client.post(f"{P}/deployments/svc/invocations", json={"rows": INST}), 400, "dataframe_split")
    assert_problem(client.post(f"{P}/deployments/svc/invocations", json={"inputs": {"age": [1, 2], "visits": [3]}}),
                   400, "inputs.visits")
    assert_problem(client.post(f"{P}/deployments/svc/invocations", data=b"age,visits\n1,2\n",
                               headers={"Content-Type": "text/csv"}), 415, "text/csv")
    assert_problem(client.post(f"{P}/deployments/svc/invocations", data=b'{"instances": [{"age": 1',
                               headers={"Content-Type": "application/json"}), 400)
    assert_problem(client.post(f"{P}/deployments/nope/invocations", json={"instances": INST}), 404, "nope")


def kserve_inputs(instances):
    """A v2 inference request built from the Open Inference Protocol spec: one named 1-D tensor per input."""
    types = {"age": "INT64", "income": "FP64", "plan": "BYTES", "signup": "BYTES", "visits": "INT64"}
    return [{"name": k, "shape": [len(instances)], "datatype": t, "data": [i[k] for i in instances]}
            for k, t in types.items()]


def test_kserve_v2_health_metadata_and_infer(server, anon, client, models):
    assert anon.get("/v2/health/live").json() == {"live": True}
    assert anon.get("/v2/health/ready").status_code == 200
    assert_problem(anon.get("/v2"), 401)
    assert client.get("/v2").json()["name"] == "lathe"
    assert_problem(anon.post("/v2/models/svc/infer", json={"inputs": kserve_inputs(INST)}), 401)

    # The same deployment under its three names: /v2 default project, /v2 "project:deployment", per project.
    metas = [client.get(u) for u in ("/v2/models/svc", "/v2/models/default:svc", f"{P}/v2/models/svc")]
    for m in metas:
        assert m.status_code == 200, m.text
    meta = metas[1].json()
    assert meta["name"] == "default:svc" and meta["versions"] == ["1"]
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {
        "age": "INT64", "income": "FP64", "plan": "BYTES", "signup": "BYTES", "visits": "INT64"}
    assert [o["name"] for o in meta["outputs"]] == ["probability", "label"]
    assert client.get("/v2/models/default:svc/ready").json() == {"name": "default:svc", "ready": True}
    assert_problem(client.get("/v2/models/default:nope/ready"), 404, "nope")
    assert_problem(client.get("/v2/models/elsewhere:svc"), 404, "elsewhere")

    expected = predict(client, "svc").json()["predictions"]
    for url in ("/v2/models/svc/infer", "/v2/models/default:svc/infer", f"{P}/v2/models/svc/infer"):
        r = client.post(url, json={"id": "req-7", "inputs": kserve_inputs(INST)})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["id"] == "req-7" and out["model_version"] == "1"
        tensors = {o["name"]: o for o in out["outputs"]}
        assert tensors["probability"]["datatype"] == "FP32" and tensors["probability"]["shape"] == [2]
        assert all(abs(a - b) < 1e-6 for a, b in zip(tensors["probability"]["data"], expected))
        assert tensors["label"]["data"] == ["1" if p >= 0.5 else "0" for p in expected]
    only = client.post("/v2/models/svc/infer", json={"inputs": kserve_inputs(INST), "outputs": [{"name": "label"}]})
    assert [o["name"] for o in only.json()["outputs"]] == ["label"]

    bad = kserve_inputs(INST)
    bad[0]["shape"] = [3]
    assert_problem(client.post("/v2/models/svc/infer", json={"inputs": bad}), 400, "inputs[0].data", "shape")
    bad = kserve_inputs(INST)
    bad[2]["data"] = [1, 2]
    assert_problem(client.post("/v2/models/svc/infer", json={"inputs": bad}), 400, "inputs[2].data[0]", "BYTES")
    bad = kserve_inputs(INST)
    bad[1]["datatype"] = "FLOAT"
    assert_problem(client.post("/v2/models/svc/infer", json={"inputs": bad}), 400, "inputs[1].datatype")
    assert_problem(client.post("/v2/models/svc/infer", json={"inputs": kserve_inputs(INST),
                                                             "outputs": [{"name": "nope"}]}), 400, "nope")
    assert_problem(client.post("/v2/models/svc/infer", json={}), 400, "inputs")

    # One [N, F] tensor holding every input in signature order.
    deploy(client, "iris-svc", model="iris")
    rows = [[5.0, 3.4, 1.4], [6.7, 3.0, 5.7]]
    r = client.post("/v2/models/iris-svc/infer",
                    json={"inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP32", "data": rows}]})
    assert r.status_code == 200, r.text
    tensors = {o["name"]: o for o in r.json()["outputs"]}
    assert tensors["label"]["data"] == ["setosa", "virginica"]
    assert tensors["probabilities"]["shape"] == [2, 3]
    names = ["sepal_length", "sepal_width", "petal_length"]
    native = predict(client, "iris-svc", [dict(zip(names, r)) for r in rows]).json()["predictions"]
    assert [p["label"] for p in native] == ["setosa", "virginica"]
    assert_problem(client.post("/v2/models/iris-svc/infer",
                               json={"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32",
                                                 "data": [1.0, 2.0]}]}), 400, "inputs[0].shape")


def test_input_is_validated_against_the_signature_with_a_policy(client, models):
    deploy(client, "strict", model="churn", version=1)
    row = dict(INST[0])
    assert_problem(predict(client, "strict", [INST[0], {**row, "colour": "red"}]), 400, "instances[1].colour",
                   "unknown field")
    assert_problem(predict(client, "strict", [{**row, "age": "old"}]), 400, "instances[0].age", "number")
    assert_problem(predict(client, "strict", [{**row, "plan": 3}]), 400, "instances[0].plan", "string")
    assert_problem(predict(client, "strict", [{**row, "signup": "yesterday"}]), 400, "instances[0].signup")
    assert_problem(predict(client, "strict", [{**row, "churned": 1}]), 400, "instances[0].churned", "target")
    no_visits = {k: v for k, v in row.items() if k != "visits"}
    assert_problem(predict(client, "strict", [row, no_visits]), 400, "instances[1].visits")
    assert predict(client, "strict", [{**row, "plan": "enterprise"}]).status_code == 200  # unseen -> missing

    r = client.patch(f"{P}/deployments/strict", json={"input": {"unknown_fields": "ignore", "missing_fields": "null",
                                                                "unseen_categories": "reject"}})
    assert r.status_code == 200, r.text
    assert r.json()["input"] == {"unknown_fields": "ignore", "missing_fields": "null", "unseen_categories": "reject"}
    base = predict(client, "strict", [row]).json()["predictions"]
    assert predict(client, "strict", [{**row, "colour": "red"}]).json()["predictions"] == base
    assert predict(client, "strict", [{**no_visits, "visits": None}]).json()["predictions"] == \
        predict(client, "strict", [no_visits]).json()["predictions"]
    assert_problem(predict(client, "strict", [row, {**row, "plan": "enterprise"}]), 400, "instances[1].plan",
                   "unseen category 'enterprise'")
    assert_problem(client.patch(f"{P}/deployments/strict", json={"input": {"unknown_fields": "maybe"}}), 400,
                   "input.unknown_fields")
    assert_problem(predict(client, "strict", []), 400, "instances")
    assert_problem(predict(client, "strict", [1, 2]), 400, "instances[0]")


def test_explain_adds_shap_contributions_that_sum_to_the_margin(client, models):
    r = client.post(f"{P}/deployments/svc/predict?explain=true", json={"instances": INST})
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(out["explanations"]) == 2
    for p, e in zip(out["predictions"], out["explanations"]):
        assert set(e) == {"age", "income", "plan", "signup", "visits", "bias"}
        margin = math.log(p / (1 - p))
        assert abs(sum(e.values()) - margin) < 1e-3, (e, margin)
    # Visits drive churn in the data: the heavy visitor's visits push the score down.
    assert out["explanations"][1]["visits"] < 0
    assert "explanations" not in predict(client, "svc").json()


def test_canary_splits_traffic_by_weight_and_sticky_keys_stick(client, models):
    deploy(client, "canary", routes=[{"model": "churn", "version": 1, "weight": 80},
                                     {"model": "churn", "version": 2, "weight": 20}])
    s = requests.Session()
    s.headers.update(client.s.headers)
    n, v2 = 1000, 0
    for _ in range(n):
        r = s.post(client.url + f"{P}/deployments/canary/predict", json={"instances": INST[:1]})
        assert r.status_code == 200, r.text
        v2 += r.headers["X-Lathe-Model-Version"] == "churn:2"
    # Binomial(1000, 0.2): sd ~ 12.6; allow 5 sd.
    assert abs(v2 - 200) < 64, v2
    stats = client.get(f"{P}/deployments/canary/stats").json()
    assert [(x["version"], x["weight"]) for x in stats["routes"]] == [(1, 80), (2, 20)]
    assert stats["routes"][1]["stats"]["requests"] == v2
    assert stats["routes"][0]["stats"]["requests"] == n - v2

    seen = {}
    for k in range(40):
        key = f"customer-{k}"
        versions = {s.post(client.url + f"{P}/deployments/canary/predict", json={"instances": INST[:1]},
                           headers={"X-Lathe-Route-Key": key}).headers["X-Lathe-Model-Version"] for _ in range(5)}
        assert len(versions) == 1, (key, versions)
        seen[key] = versions.pop()
    assert "churn:1" in seen.values()


def wait_for(predicate, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def test_shadow_gets_a_copy_and_never_changes_the_response(client, models):
    expected = predict(client, "svc").json()["predictions"]
    deploy(client, "shadowed", model="churn", version=1, shadow={"model": "churn", "version": 2})
    for _ in range(30):
        r = predict(client, "shadowed")
        assert r.status_code == 200 and r.json()["predictions"] == expected and r.json()["version"] == 1
    stats = wait_for(lambda: (lambda s: s if s["shadow"]["stats"]["requests"] == 30 else None)(
        client.get(f"{P}/deployments/shadowed/stats").json()))
    assert stats, client.get(f"{P}/deployments/shadowed/stats").json()
    assert stats["shadow"]["version"] == 2 and stats["shadow"]["stats"]["errors"] == 0
    assert stats["routes"][0]["stats"]["requests"] == 30

    # A shadow that fails on every request (it needs 'region') still never touches the response.
    r = client.patch(f"{P}/deployments/shadowed", json={"shadow": {"model": "churn", "version": 3}})
    assert r.status_code == 200, r.text
    for _ in range(20):
        r = predict(client, "shadowed")
        assert r.status_code == 200 and r.json()["predictions"] == expected
    assert wait_for(lambda: client.get(f"{P}/deployments/shadowed/stats").json()["shadow"]["stats"]["errors"] == 20)
    r = client.patch(f"{P}/deployments/shadowed", json={"shadow": None})
    assert r.status_code == 200 and r.json()["shadow"] is None


def hammer(client, name, stop, results, version_counts):
    s = requests.Session()
    s.headers.update(client.s.headers)
    while not stop.is_set():
        try:
            r = s.post(client.url + f"{P}/deployments/{name}/predict", json={"instances": INST}, timeout=10)
            results.append(r.status_code)
            if r.status_code == 200:
                v = r.json()["version"]
                version_counts[v] = version_counts.get(v, 0) + 1
        except requests.RequestException as e:  # a dropped connection is a failure too
            results.append(repr(e))


def test_swapping_versions_under_load_drops_nothing(client, models):
    soak = os.environ.get("LATHE_SOAK") == "1"
    duration, every = (60.0, 5.0) if soak else (6.0, 0.5)
    deploy(client, "swap", model="churn", version=1)
    stop, results, counts = threading.Event(), [], {}
    threads = [threading.Thread(target=hammer, args=(client, "swap", stop, results, counts)) for _ in range(3)]
    for t in threads:
        t.start()
    swaps, version, end = 0, 1, time.time() + duration
    while time.time() < end:
        time.sleep(every)
        version = 2 if version == 1 else 1
        r = client.patch(f"{P}/deployments/swap", json={"version": version})
        assert r.status_code == 200, r.text
        swaps += 1
    stop.set()
    for t in threads:
        t.join()
    failures = [x for x in results if x != 200]
    assert not failures, failures[:5]
    assert len(results) > 100 and swaps >= 5
    assert counts.get(1, 0) > 0 and counts.get(2, 0) > 0, counts


def test_a_failing_canary_is_rolled_back_with_an_event(client, models):
    deploy(client, "guarded", routes=[{"model": "churn", "version": 1, "weight": 1},
                                      {"model": "churn", "version": 3, "weight": 1}],
           rollback={"max_error_rate": 0.2, "window_s": 30, "min_requests": 10})
    errors = 0
    for _ in range(60):
        r = predict(client, "guarded", INST[:1])  # no 'region': version 3 rejects it
        if r.status_code != 200:
            assert_problem(r, 400, "region")
            errors += 1
    assert errors >= 10, errors
    events = wait_for(lambda: [e for e in client.get(f"{P}/deployments/guarded/events").json()["events"]
                               if e["kind"] == "rollback"], timeout=10)
    assert len(events) == 1, client.get(f"{P}/deployments/guarded/events").json()
    detail = events[0]["detail"]
    assert detail["version"] == 3 and "error rate" in detail["reason"] and detail["errors"] >= 10
    d = client.get(f"{P}/deployments/guarded").json()
    assert [(r["version"], r["weight"]) for r in d["routes"]] == [(1, 1), (3, 0)]
    for _ in range(30):
        r = predict(client, "guarded", INST[:1])
        assert r.status_code == 200 and r.json()["version"] == 1
    kinds = [e["kind"] for e in client.get(f"{P}/deployments/guarded/events").json()["events"]]
    assert kinds.count("created") == 1 and kinds.count("rollback") == 1


def test_feedback_joins_labels_and_gives_live_metrics(client, models):
    deploy(client, "fb", model="churn", version=1)
    lines = churn_csv(rows=120, seed=99).splitlines()
    header = lines[0].split(",")
    truth = {}
    for i, line in enumerate(lines[1:]):
        values = line.split(",")
        rec = dict(zip(header, values))
        inst = {"age": int(rec["age"]), "income": float(rec["income"]) if rec["income"] else None,
                "plan": rec["plan"], "signup": rec["signup"], "visits": int(rec["visits"])}
        rid = f"fb-{i}"
        r = predict(client, "fb", [inst], headers={"X-Request-Id": rid})
        assert r.status_code == 200, r.text
        truth[rid] = int(rec["churned"])
    ids = list(truth)
    # One at a time, then in bulk.
    r = client.post(f"{P}/deployments/fb/feedback", json={"request_id": ids[0], "label": truth[ids[0]]})
    assert r.status_code == 200 and r.json()["matched"] == 1, r.text
    r = client.post(f"{P}/deployments/fb/feedback",
                    json={"feedback": [{"request_id": i, "labels": [truth[i]]} for i in ids[1:]] +
                          [{"request_id": "never-seen", "label": 1}]})
    assert r.status_code == 200, r.text
    assert r.json()["matched"] == len(ids) - 1 and r.json()["not_found"] == ["never-seen"]
    fb = client.get(f"{P}/deployments/fb/stats").json()["routes"][0]["feedback"]
    assert fb["labeled_rows"] == len(ids)
    assert fb["accuracy"] > 0.7 and fb["roc_auc"] > 0.75, fb

    assert_problem(client.post(f"{P}/deployments/fb/feedback", json={"request_id": "never-seen", "label": 1}), 404,
                   "never-seen")
    assert_problem(client.post(f"{P}/deployments/fb/feedback", json={"label": 1}), 400, "request_id")
    assert_problem(client.post(f"{P}/deployments/fb/feedback", json={"request_id": ids[0]}), 400, "label")
    assert_problem(client.post(f"{P}/deployments/fb/feedback", json={"feedback": []}), 400, "feedback")


def test_prediction_log_sampling_is_configurable(client, models):
    deploy(client, "unlogged", model="churn", version=1, log={"sample_rate": 0})
    r = predict(client, "unlogged", headers={"X-Request-Id": "unlogged-1"})
    assert r.status_code == 200
    assert_problem(client.post(f"{P}/deployments/unlogged/feedback", json={"request_id": "unlogged-1", "label": 1}),
                   404, "unlogged-1")
    stats = client.get(f"{P}/deployments/unlogged/stats").json()
    assert stats["prediction_log"]["sample_rate"] == 0 and stats["prediction_log"]["dropped"] == 0
    # A per-second cap: at high traffic the log keeps a bounded sample, and says how much it left out.
    deploy(client, "capped", model="churn", version=1, log={"max_per_second": 5})
    for i in range(40):
        assert predict(client, "capped", headers={"X-Request-Id": f"capped-{i}"}).status_code == 200
    log = client.get(f"{P}/deployments/capped/stats").json()["prediction_log"]
    assert log["max_per_second"] == 5 and log["over_rate"] >= 10, log
    logged = client.get(f"{P}/deployments/capped/predictions?limit=100").json()["items"]
    assert len(logged) == 40 - log["over_rate"]
    assert_problem(client.patch(f"{P}/deployments/capped", json={"log": {"max_per_second": -1}}), 400,
                   "log.max_per_second")


def test_the_prediction_log_holds_the_instances_as_sent_whatever_the_body(client, models):
    deploy(client, "logged", model="churn", version=1)
    cols = list(INST[0])
    bodies = {
        # the fast path (records straight from the body, odd whitespace and escapes included)
        "fast": '{ "instances" :\n  [{"age": 70, "income": 40000.0, "plan": "b\\u0061sic", "signup": "2024-03-01",'
                ' "visits": 1}, {"age":25,"income":null,"plan":"team","signup":"2024-05-11","visits":29}] }',
        # the split form (converted to records), and a body the fast path leaves to the DOM path
        "split": json.dumps({"columns": cols, "data": [[i[c] for c in cols] for i in INST]}),
        "dom": json.dumps({"instances": INST, "note": "extra top-level keys are ignored"}),
    }
    answers = {}
    for rid, body in bodies.items():
        r = client.post(f"{P}/deployments/logged/predict", data=body,
                        headers={"Content-Type": "application/json", "X-Request-Id": f"log-{rid}"})
        assert r.status_code == 200, r.text
        answers[rid] = r.json()["predictions"]
    assert answers["fast"] == answers["split"] == answers["dom"]
    items = client.get(f"{P}/deployments/logged/predictions?limit=10").json()["items"]
    by_id = {i["request_id"]: i for i in items}
    for rid in bodies:
        entry = by_id[f"log-{rid}"]
        assert entry["inputs"] == INST and entry["outputs"] == answers[rid], entry
        assert entry["model"] == "churn" and entry["version"] == 1 and entry["latency_ms"] >= 0
    assert len(client.get(f"{P}/deployments/logged/predictions?limit=1").json()["items"]) == 1
    assert_problem(client.get(f"{P}/deployments/logged/predictions?limit=0"), 400, "limit")
    assert_problem(client.get(f"{P}/deployments/nope/predictions"), 404, "nope")
    # A number beyond double range is a 400 naming the problem, on both protocols.
    for path in ("predict", "invocations"):
        r = client.post(f"{P}/deployments/logged/{path}", data='{"instances": [{"age": 1e999}]}',
                        headers={"Content-Type": "application/json"})
        assert_problem(r, 400, "overflow")


def test_a_model_version_bundle_can_be_downloaded(client, anon, models):
    r = client.get(f"{P}/models/churn/versions/1/bundle")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/octet-stream"
    assert 'filename="churn-v1.lathe"' in r.headers["Content-Disposition"]
    assert len(r.content) > 1000
    assert r.content != client.get(f"{P}/models/churn/versions/2/bundle").content
    assert_problem(client.get(f"{P}/models/churn/versions/99/bundle"), 404, "99")
    assert anon.get(f"{P}/models/churn/versions/1/bundle").status_code == 401


def test_each_deployment_publishes_its_schema(client, models):
    doc = client.get(f"{P}/deployments/svc/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    inst = doc["components"]["schemas"]["Instance"]
    assert set(inst["properties"]) == {"age", "income", "plan", "signup", "visits"}
    assert inst["properties"]["age"]["type"] == ["integer", "null"]
    assert inst["properties"]["signup"]["format"] == "date-time"
    assert f"{P}/deployments/svc/predict" in doc["paths"]
    iris = client.get(f"{P}/deployments/iris-svc/openapi.json").json()
    assert set(iris["components"]["schemas"]["Instance"]["properties"]) == {"sepal_length", "sepal_width",
                                                                             "petal_length"}


def test_bad_deploys_are_refused_and_the_running_version_keeps_serving(server, client, models):
    deploy(client, "steady", model="churn", version=1)
    expected = predict(client, "steady").json()["predictions"]
    assert_problem(client.patch(f"{P}/deployments/steady", json={"version": 99}), 404, "99")
    assert_problem(client.patch(f"{P}/deployments/steady", json={"routes": [{"model": "nope"}]}), 404, "nope")
    assert_problem(client.patch(f"{P}/deployments/steady", json={"routes": [{"model": "churn", "weight": -1}]}), 400,
                   "routes[0].weight")
    assert_problem(client.patch(f"{P}/deployments/steady", json={"version": 2, "routes": [{"model": "churn"}]}), 400,
                   "routes")
    assert_problem(client.post(f"{P}/deployments", json={"name": "x", "model": "churn", "colour": 1}), 400, "colour")

    # A model file corrupted on disk: the deploy is refused and version 1 keeps serving.
    run = train(client, "churn", "churned", "binary", params={"n_estimators": 7, "max_depth": 3})[1]
    version = register(client, "churn", run)
    db = sqlite3.connect(f"file:{server.data_dir / 'lathe.db'}?mode=ro", uri=True)
    (blob,) = db.execute("SELECT blob FROM model_versions WHERE model = 'churn' AND version = ?", (version,)).fetchone()
    db.close()
    (path,) = glob.glob(str(server.data_dir / "**" / blob[2:]), recursive=True)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(20)
        f.write(b"\xff" * 16)
    r = client.patch(f"{P}/deployments/steady", json={"version": version})
    assert_problem(r, 409, f"version {version} cannot be loaded")
    assert client.get(f"{P}/deployments/steady").json()["version"] == 1
    assert predict(client, "steady").json()["predictions"] == expected


def test_stats_events_and_metrics(client, anon, models):
    stats = client.get(f"{P}/deployments/svc/stats").json()
    route = stats["routes"][0]
    assert route["model"] == "churn" and route["version"] == 1 and route["weight"] == 1
    s = route["stats"]
    assert s["requests"] > 0 and s["rows"] >= 2 * s["requests"] - 2 * s["errors"]
    assert sum(b["count"] for b in s["latency_ms"]["buckets"]) == s["requests"]
    assert s["predictions"]["kind"] == "probability"
    assert sum(b["count"] for b in s["predictions"]["histogram"]) == s["rows"]
    kinds = [e["kind"] for e in client.get(f"{P}/deployments/swap/events").json()["events"]]
    assert kinds[-1] == "created" and kinds.count("updated") >= 5  # newest first
    metrics = anon.get("/metrics").text
    assert 'lathe_deployment_requests_total{project="default",deployment="svc",model="churn",version="1",role="route"}' \
        in metrics
    assert 'lathe_deployment_route_weight{project="default",deployment="canary",model="churn",version="2",role="route"} 20' \
        in metrics
    assert "lathe_prediction_log_entries_total" in metrics


def test_batch_scoring_makes_a_dataset_version_with_predictions(client, models):
    r = client.post(f"{P}/batch-predictions", json={"dataset": "churn", "model": "churn", "model_version": 1,
                                                    "output": "churn-scored", "keep_columns": ["age", "visits"],
                                                    "explain": True})
    assert r.status_code == 202, r.text
    assert r.json()["dataset"] == "churn-scored" and r.json()["model_version"] == 1
    job = client.wait_job(r.json()["job"])
    assert job["state"] == "succeeded", job
    assert job["progress"] == 1.0 and job["result"]["rows"] == 400
    scored = client.get(f"{P}/datasets/churn-scored/versions/{job['result']['version']}/rows?limit=400").json()
    names = [c["name"] for c in job["result"]["columns"]]
    assert names == ["age", "visits", "prediction", "probability", "shap_age", "shap_income", "shap_plan",
                     "shap_signup", "shap_visits", "shap_bias"]
    source = client.get(f"{P}/datasets/churn/versions/1/rows?limit=400").json()["rows"]
    instances = [{k: row[k] for k in ("age", "income", "plan", "signup", "visits")} for row in source[:50]]
    live = predict(client, "svc", instances).json()["predictions"]
    for row, p in zip(scored["rows"][:50], live):
        assert abs(row["probability"] - p) < 1e-6
        assert row["prediction"] == (1 if p >= 0.5 else 0)
        margin = sum(v for k, v in row.items() if k.startswith("shap_"))
        assert abs(margin - math.log(p / (1 - p))) < 1e-3
    lineage = job["result"]["lineage"]
    assert lineage["parent"] == {"dataset": "churn", "version": 1}
    assert lineage["model"] == {"name": "churn", "version": 1}

    # By deployment, waiting: the deployment's version scores, every input column is kept.
    r = client.post(f"{P}/batch-predictions?wait=true", json={"dataset": "churn", "deployment": "svc"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "churn-scored"
    assert [c["name"] for c in r.json()["columns"]][-2:] == ["prediction", "probability"]
    assert r.json()["lineage"]["model"]["version"] == 1

    # A model that needs a column the dataset lacks fails the job, naming it; nothing is written.
    versions_before = len(client.get(f"{P}/datasets/churn-scored").json()["versions"])
    r = client.post(f"{P}/batch-predictions", json={"dataset": "churn", "model": "churn", "model_version": 3,
                                                    "output": "churn-scored"})
    job = client.wait_job(r.json()["job"])
    assert job["state"] == "failed" and "region" in str(job["result"]), job
    assert len(client.get(f"{P}/datasets/churn-scored").json()["versions"]) == versions_before

    assert_problem(client.post(f"{P}/batch-predictions", json={"dataset": "nope", "model": "churn"}), 404, "nope")
    assert_problem(client.post(f"{P}/batch-predictions", json={"dataset": "churn", "model": "churn",
                                                              "model_version": 99}), 404, "99")
    assert_problem(client.post(f"{P}/batch-predictions", json={"dataset": "churn", "model": "churn",
                                                              "keep_columns": ["age", "nope"]}), 400,
                   "keep_columns[1]")
    assert_problem(client.post(f"{P}/batch-predictions", json={"dataset": "churn", "model": "churn",
                                                              "deployment": "svc"}), 400, "deployment")
    assert_problem(client.post(f"{P}/batch-predictions", json={"dataset": "churn", "model": "churn", "rows": 5}),
                   400, "rows")
    assert_problem(client.post(f"{P}/batch-predictions", json={"dataset": "churn", "model": "churn",
                                                              "output": "../x"}), 400, "output")
    assert_problem(client.post(f"{P}/batch-predictions", json={"dataset": "churn", "model": "churn",
                                                              "explain": "yes"}), 400, "explain")


def test_backpressure_bounds_running_and_queued_requests(client, models):
    deploy(client, "limited", model="churn", version=1, limits={"max_concurrency": 1, "max_queue": 0})
    big = [dict(INST[i % 2], age=20 + i % 50) for i in range(2000)]
    statuses, lock = [], threading.Lock()

    def worker():
        s = requests.Session()
        s.headers.update(client.s.headers)
        for _ in range(15):
            r = s.post(client.url + f"{P}/deployments/limited/predict?explain=true", json={"instances": big}, timeout=60)
            if r.status_code == 429:
                assert r.headers["Retry-After"] == "1"
                assert_problem(r, 429, "limited", "retry")
            with lock:
                statuses.append(r.status_code)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) > 0 and statuses.count(429) > 0, statuses
    adm = client.get(f"{P}/deployments/limited/stats").json()["admission"]
    assert adm["rejected_queue_full"] == statuses.count(429)
    assert adm["running"] == 0 and adm["waiting"] == 0

    # A queue with a deadline: whoever waits longer than X-Request-Timeout-Ms gets 503 with Retry-After.
    r = client.patch(f"{P}/deployments/limited", json={"limits": {"max_concurrency": 1, "max_queue": 8}})
    assert r.status_code == 200 and r.json()["limits"] == {"max_concurrency": 1, "max_queue": 8, "timeout_ms": 0,
                                                          "rate_per_second": 0, "rate_burst": 0}
    statuses.clear()

    def deadline_worker():
        s = requests.Session()
        s.headers.update(client.s.headers)
        for _ in range(10):
            r = s.post(client.url + f"{P}/deployments/limited/predict?explain=true", json={"instances": big},
                       headers={"X-Request-Timeout-Ms": "1"}, timeout=60)
            if r.status_code == 503:
                assert r.headers["Retry-After"] == "1" and "deadline" in r.json()["detail"]
            with lock:
                statuses.append(r.status_code)

    threads = [threading.Thread(target=deadline_worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) <= {200, 503}, statuses
    adm = client.get(f"{P}/deployments/limited/stats").json()["admission"]
    assert adm["rejected_deadline"] == statuses.count(503)
    assert_problem(predict(client, "limited", headers={"X-Request-Timeout-Ms": "soon"}), 400, "X-Request-Timeout-Ms")
    assert_problem(client.patch(f"{P}/deployments/limited", json={"limits": {"max_queue": -1}}), 400,
                   "limits.max_queue")


def test_micro_batching_combines_concurrent_requests_and_answers_each_correctly(client, models):
    deploy(client, "batched", model="churn", version=1, batching={"max_batch_rows": 16, "max_delay_us": 3000})
    d = client.get(f"{P}/deployments/batched").json()
    assert d["batching"] == {"max_batch_rows": 16, "max_delay_us": 3000}
    # Reference answers from the unbatched deployment of the same version.
    variants = [[dict(INST[i % 2], age=20 + i)] for i in range(40)] + [INST]
    expected = [predict(client, "svc", v).json()["predictions"] for v in variants]
    errors, lock = [], threading.Lock()

    def worker(offset):
        s = requests.Session()
        s.headers.update(client.s.headers)
        for i in range(offset, offset + 60):
            v = i % len(variants)
            r = s.post(client.url + f"{P}/deployments/batched/predict", json={"instances": variants[v]}, timeout=30)
            with lock:
                if r.status_code != 200 or r.json()["predictions"] != expected[v]:
                    errors.append((r.status_code, r.text[:200]))

    threads = [threading.Thread(target=worker, args=(k * 7,)) for k in range(12)]  # more clients than I/O threads
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    route = client.get(f"{P}/deployments/batched/stats").json()["routes"][0]
    b = route["batching"]
    assert b["requests"] == 12 * 60 and route["stats"]["requests"] == 12 * 60 + 0
    assert b["batches"] < b["requests"] and b["mean_batch_rows"] > 1, b
    # Every protocol goes through it; explanations are computed directly; errors are still 400s.
    r = client.post(f"{P}/deployments/batched/invocations", json={"instances": INST})
    assert r.status_code == 200 and r.json()["predictions"] == expected[-1]
    r = client.post(f"{P}/deployments/batched/predict?explain=true", json={"instances": INST})
    assert r.status_code == 200 and len(r.json()["explanations"]) == 2
    assert_problem(predict(client, "batched", [{"age": "old"}]), 400, "instances[0].age")
    # Off again, and bad settings name the field.
    r = client.patch(f"{P}/deployments/batched", json={"batching": None})
    assert r.status_code == 200 and r.json()["batching"] is None
    assert "batching" not in client.get(f"{P}/deployments/batched/stats").json()["routes"][0]
    assert predict(client, "batched").json()["predictions"] == expected[-1]
    assert_problem(client.patch(f"{P}/deployments/batched", json={"batching": {"max_batch_rows": 0}}), 400,
                   "batching.max_batch_rows")
    assert_problem(client.patch(f"{P}/deployments/batched", json={"batching": {"max_delay_us": 5e6}}), 400,
                   "batching.max_delay_us")
    assert_problem(client.patch(f"{P}/deployments/batched", json={"batching": {"size": 3}}), 400, "size")


def metric(text, name):
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_models_beyond_the_memory_budget_are_unloaded_and_reloaded_on_demand(tmp_path):
    srv = Server(tmp_path, ["--model-cache-mb", "1"]).start()
    try:
        c = Client(srv.url, login(srv.url))
        import_csv(c, "big", churn_csv(rows=6000, seed=3))
        for i in range(2):  # two models of several MB each: they cannot both stay within 1 MB
            run = train(c, "big", "churned", "binary", params={"n_estimators": 150, "max_depth": 8,
                                                                 "learning_rate": 0.2 + 0.1 * i})[1]
            assert register(c, "big", run) == i + 1
            deploy(c, f"d{i + 1}", model="big", version=i + 1)
        first = {d: predict(c, d).json()["predictions"] for d in ("d1", "d2")}
        assert first["d1"] != first["d2"]
        for _ in range(3):  # alternate: each request finds its model unloaded by the other one's load
            for d in ("d1", "d2"):
                r = predict(c, d)
                assert r.status_code == 200 and r.json()["predictions"] == first[d]
        loaded = {d: c.get(f"{P}/deployments/{d}/stats").json()["routes"][0]["loaded"] for d in ("d1", "d2")}
        assert loaded == {"d1": False, "d2": True}, loaded  # only the most recently used one stays
        text = c.get("/metrics").text
        assert metric(text, "lathe_model_cache_budget_bytes") == 1 << 20
        assert metric(text, "lathe_model_cache_loaded") == 1
        assert metric(text, "lathe_model_cache_unloads_total") >= 6
        assert metric(text, "lathe_model_cache_loads_total") >= 8
        assert metric(text, "lathe_model_cache_bytes") > 1 << 20  # one model alone is over the budget
    finally:
        srv.stop()
